import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface Started {
  child: ChildProcess
  output: () => string
  /** Sends SIGINT and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
  exited: Promise<number | null>
}

/** Starts one of the project's entry points as a user would, with tsx, in its own process. */
export function startEntry(entry: string, env: Record<string, string>): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    child,
    output: () => out,
    exited,
    stop: async (signal = 'SIGINT') => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export const isReady = async (baseUrl: string) => (await fetch(`${baseUrl}/readyz`)).status === 200

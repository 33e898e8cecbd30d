import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Milliseconds since the run started. */
  at: number
  /** We sent the signal ourselves (the kill -9 fault, or the final stop). */
  intended: boolean
  /** Its last lines of output, info and below left out: what a crash said. */
  lastWords: string
}

/**
 * One of the product's entry points, run as production runs it: its own process (`node --import tsx <entry>`), its
 * own environment, output appended to a log file. Every exit is recorded, so a crash is reported, never waited on.
 */
export class Child {
  private proc: ChildProcess | null = null
  private tail: string[] = []
  // The first 64 KB since the last start, for readiness lines printed once at boot.
  private head = ''
  private log: WriteStream
  private intended = false
  readonly exits: Exit[] = []
  starts = 0

  constructor(
    readonly name: string,
    private readonly entry: string,
    private readonly env: () => Record<string, string>,
    logFile: string,
    private readonly clock: () => number,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' })
  }

  get pid() { return this.proc?.pid ?? null }
  get alive() { return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null }
  /** Exits we did not cause. */
  get crashes() { return this.exits.filter((e) => !e.intended) }
  output() { return this.tail.join('') }
  /** Printed since the last start (within its first 64 KB). */
  printed(text: string) { return this.head.includes(text) }

  /** Starts the process and waits until `ready()` says so; fails fast (not at the timeout) if it exits first. */
  async start(ready: (child: Child) => Promise<boolean>, timeoutMs: number): Promise<void> {
    if (this.alive) throw new Error(`${this.name} is already running`)
    this.intended = false
    this.tail = []
    this.head = ''
    this.starts++
    const proc = spawn(process.execPath, ['--import', 'tsx', this.entry], { cwd: ROOT, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    const keep = (d: Buffer) => {
      this.log.write(d)
      this.tail.push(d.toString())
      if (this.head.length < 65_536) this.head += d.toString()
      if (this.tail.length > 200) this.tail.shift()
    }
    proc.stdout!.on('data', keep)
    proc.stderr!.on('data', keep)
    proc.on('exit', (code, signal) => {
      this.exits.push({ code, signal, at: this.clock(), intended: this.intended, lastWords: lastWords(this.output()) })
      this.log.write(`\n[chaos] ${this.name} exited: code ${code} signal ${signal}\n`)
    })
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`${this.name} exited while starting (code ${proc.exitCode}, signal ${proc.signalCode}):\n${this.output()}`)
      if (await ready(this).catch(() => false)) return
      await sleep(200)
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output()}`)
  }

  /** Sends a signal we mean (SIGKILL for the fault, SIGTERM to finish) and waits, bounded, for the exit. */
  async kill(signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
    const proc = this.proc
    if (!proc || !this.alive) return
    this.intended = true
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    const timer = sleep(timeoutMs).then(() => 'timeout' as const)
    if ((await Promise.race([exited, timer])) === 'timeout') {
      proc.kill('SIGKILL')
      await exited
    }
  }

  /** Flushes and closes the log file. */
  close(): Promise<void> { return new Promise((resolve) => this.log.end(() => resolve())) }
}

/** The output's last 15 lines that are not pino info/debug/trace lines (`"level":30` and below). */
export function lastWords(output: string): string {
  return output.split('\n').filter((l) => l.trim() && !/^\{"level":[123]0,/.test(l)).slice(-15).join('\n')
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Ready when GET <base>/readyz answers 200. */
export const readyz = (baseUrl: string) => async () => (await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200

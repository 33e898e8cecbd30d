import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Child } from './children.js'

// Real processes: the drill's verdicts rest on telling our own kill from a crash, and on never waiting for a dead one.
describe('a supervised child process', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'chaos-child-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  const script = async (name: string, code: string) => {
    const file = path.join(dir, `${name}.mjs`)
    await writeFile(file, code)
    return file
  }
  const child = (name: string, entry: string) => new Child(name, entry, () => ({ PATH: process.env.PATH ?? '' }), path.join(dir, `${name}.log`), () => 0)

  it('fails its start as soon as the process dies, with what it said, instead of waiting for readiness', async () => {
    const c = child('dies', await script('dies', 'console.log(JSON.stringify({ level: 30, msg: "booting" })); console.error("TypeError: boom"); process.exit(3)'))
    await expect(c.start(async () => false, 60_000)).rejects.toThrow(/dies exited while starting \(code 3[\s\S]*TypeError: boom/)
    expect(c.crashes).toEqual([expect.objectContaining({ code: 3, intended: false, lastWords: 'TypeError: boom' })])
    await c.close()
    expect(await readFile(path.join(dir, 'dies.log'), 'utf8')).toContain('[chaos] dies exited: code 3')
  })

  it('records a kill we sent as intended, and a later exit on its own as a crash', async () => {
    const c = child('lives', await script('lives', 'console.log("worker running"); setInterval(() => {}, 1000)'))
    await c.start(async (me) => me.printed('worker running'), 60_000)
    expect(c.alive).toBe(true)
    await c.kill('SIGKILL')
    expect(c.alive).toBe(false)
    expect(c.exits).toEqual([expect.objectContaining({ signal: 'SIGKILL', intended: true })])
    expect(c.crashes).toEqual([])

    await c.start(async (me) => me.printed('worker running'), 60_000)
    process.kill(c.pid!, 'SIGTERM') // not through kill(): as if something else ended it
    await new Promise<void>((resolve) => { const t = setInterval(() => { if (!c.alive) { clearInterval(t); resolve() } }, 20) })
    expect(c.crashes).toEqual([expect.objectContaining({ signal: 'SIGTERM', intended: false })])
    expect(c.starts).toBe(2)
    await c.close()
  })
})

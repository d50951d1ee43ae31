import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { withFileLock } from '../src/lib/lock.js'

let dir: string
let lock: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
  lock = join(dir, 'config.json.refresh-lock')
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const OPTIONS = { staleMs: 20_000, waitMs: 25_000, busy: () => new Error('busy') }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!
const here = () => ({ host: hostname(), ns: readlinkSync('/proc/self/ns/pid') })

describe('withFileLock', () => {
  it('one holder at a time; the lock and its staged files are gone afterwards', async () => {
    let inside = 0
    let most = 0
    await Promise.all(
      Array.from({ length: 6 }, () =>
        withFileLock(lock, OPTIONS, async () => {
          most = Math.max(most, ++inside)
          await sleep(20)
          inside--
        }),
      ),
    )
    expect(most).toBe(1)
    expect(readdirSync(dir)).toEqual([])
  })

  it('several processes at once: each read-modify-write of a shared counter is whole', async () => {
    const counter = join(dir, 'counter')
    writeFileSync(counter, '0')
    const script = fileURLToPath(new URL('./fixtures/lock-worker.ts', import.meta.url))
    const run = () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, lock, counter, '5'], { stdio: 'inherit' })
        child.on('exit', resolve)
      })
    expect(await Promise.all([run(), run(), run()])).toEqual([0, 0, 0])
    expect(readFileSync(counter, 'utf8')).toBe('15')
    expect(existsSync(lock)).toBe(false)
  }, 60_000)

  it('several processes finding an abandoned lock at once: one takes it over, each holds it alone', async () => {
    const counter = join(dir, 'counter')
    writeFileSync(counter, '0')
    writeFileSync(lock, JSON.stringify({ ...here(), pid: deadPid(), nonce: 'dead' }))
    const script = fileURLToPath(new URL('./fixtures/lock-worker.ts', import.meta.url))
    const run = () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, lock, counter, '4'], { stdio: 'inherit' })
        child.on('exit', resolve)
      })
    expect(await Promise.all([run(), run(), run(), run()])).toEqual([0, 0, 0, 0])
    expect(readFileSync(counter, 'utf8')).toBe('16')
    expect(readdirSync(dir).sort()).toEqual(['counter'])
  }, 60_000)

  it('clears what a crash left: an old takeover guard and old staged files', async () => {
    const old = new Date(Date.now() - 60_000)
    mkdirSync(`${lock}.takeover`)
    utimesSync(`${lock}.takeover`, old, old)
    writeFileSync(`${lock}.0d1c-crash.staged`, 'x')
    utimesSync(`${lock}.0d1c-crash.staged`, old, old)
    writeFileSync(`${lock}.fresh.staged`, 'y') // another process's, being made right now
    writeFileSync(lock, JSON.stringify({ ...here(), pid: deadPid(), nonce: 'dead' }))
    expect(await withFileLock(lock, OPTIONS, async () => 'ran')).toBe('ran')
    expect(readdirSync(dir).sort()).toEqual(['config.json.refresh-lock.fresh.staged'])
  })

  it("takes over the lock of a holder on this host that is gone, at once", async () => {
    writeFileSync(lock, JSON.stringify({ ...here(), pid: deadPid(), nonce: 'x' }))
    const started = Date.now()
    expect(await withFileLock(lock, OPTIONS, async () => 'ran')).toBe('ran')
    // not waited out by age (20 s)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(existsSync(lock)).toBe(false)
  })

  it("waits for another host's or container's lock whatever its pid, until released or old", async () => {
    for (const other of [{ host: `not-${hostname()}`, ns: here().ns }, { host: hostname(), ns: 'pid:[1]' }]) {
      writeFileSync(lock, JSON.stringify({ ...other, pid: deadPid(), nonce: 'x' }))
      let ran = false
      const held = withFileLock(lock, OPTIONS, async () => (ran = true))
      await sleep(300)
      expect(ran).toBe(false)
      rmSync(lock)
      await held
      expect(ran).toBe(true)
    }
    // an old one is taken over whoever holds it, also text that is no owner
    for (const text of [JSON.stringify({ host: 'elsewhere', ns: null, pid: 1, nonce: 'y' }), '']) {
      writeFileSync(lock, text)
      const old = new Date(Date.now() - 60_000)
      utimesSync(lock, old, old)
      expect(await withFileLock(lock, OPTIONS, async () => 'ran')).toBe('ran')
    }
  })

  it('gives up with the busy error after waitMs', async () => {
    writeFileSync(lock, JSON.stringify({ host: 'elsewhere', ns: null, pid: 1, nonce: 'y' }))
    await expect(withFileLock(lock, { ...OPTIONS, waitMs: 200 }, async () => 'ran')).rejects.toThrow('busy')
    expect(existsSync(lock)).toBe(true)
  })

  it('fails at once, taking no lock, where the lock cannot be written', async () => {
    await expect(withFileLock(join(dir, 'missing', 'x.lock'), OPTIONS, async () => 'ran')).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it("releases only its own lock: one taken over meanwhile stays its new holder's", async () => {
    const theirs = JSON.stringify({ host: 'elsewhere', ns: null, pid: 1, nonce: 'new' })
    await withFileLock(lock, OPTIONS, async () => {
      // what a takeover while this holder was stopped leaves
      rmSync(lock)
      writeFileSync(lock, theirs)
    })
    expect(readFileSync(lock, 'utf8')).toBe(theirs)
  })
})

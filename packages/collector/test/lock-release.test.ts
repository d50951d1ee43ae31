import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { acquireDirLock, DataDirLockedError } from '../src/db/lock.js'

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

function lockPath(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
  dirs.push(dir)
  return { dir, path: join(dir, 'collector.lock') }
}

/** Puts `owner`'s lock in place at once, as a takeover does (the old one goes, a whole new one appears). */
function replaceLock(path: string, owner: object): string {
  const content = JSON.stringify(owner)
  writeFileSync(`${path}.other`, content)
  renameSync(`${path}.other`, path)
  return content
}

describe('releasing the data-dir lock', () => {
  it('removes the lock it took, leaving nothing aside, so the next start takes it', async () => {
    const { dir, path } = lockPath()
    const lock = await acquireDirLock(path)
    lock.release()
    expect(readdirSync(dir)).toEqual([])
    const again = await acquireDirLock(path)
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid)
    again.release()
    expect(readdirSync(dir)).toEqual([])
  })

  it('leaves a lock another collector took over in the meantime, even one with the same pid and host name', async () => {
    // pid 1 of a container recreated under a fixed host name: the new one judged the old one's
    // lock stale (pid 1 is itself, started at another time) and took it over while the old one
    // was still stopping; the old one's release must not remove the new one's lock
    const { dir, path } = lockPath()
    const lock = await acquireDirLock(path)
    const theirs = replaceLock(path, { pid: process.pid, host: hostname(), started: 'the-recreated-container', token: 'theirs' })
    lock.release()
    expect(readdirSync(dir)).toEqual(['collector.lock'])
    expect(readFileSync(path, 'utf8')).toBe(theirs)
  })

  it('leaves a lock of another process that took over, and one written by an older collector', async () => {
    const { dir, path } = lockPath()
    for (const owner of [
      { pid: process.pid + 1, host: hostname(), started: '1', token: 'another' },
      { pid: process.pid, host: hostname(), started: null }, // no token: an older collector's
    ]) {
      const lock = await acquireDirLock(path)
      const theirs = replaceLock(path, owner)
      lock.release()
      expect(readFileSync(path, 'utf8')).toBe(theirs)
      expect(readdirSync(dir)).toEqual(['collector.lock'])
      rmSync(path)
    }
  })

  it('is quiet when the lock is gone already, and a second release changes nothing', async () => {
    const { dir, path } = lockPath()
    const lock = await acquireDirLock(path)
    rmSync(path)
    expect(() => lock.release()).not.toThrow()
    const next = await acquireDirLock(path)
    lock.release() // the first handle again: already released
    expect(readdirSync(dir)).toEqual(['collector.lock'])
    await expect(acquireDirLock(path)).rejects.toThrow(DataDirLockedError)
    next.release()
    expect(readdirSync(dir)).toEqual([])
  })
})

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeOpenAI, type FakeOpenAI } from '../../../sdk/test/fakes/openai-server.js'
import { startTestCollector, type TestCollector } from './collector.js'
import { setupProject, type TestUser } from './accounts.js'

/** What an end-to-end test of the SDK needs: a real collector with a project and key, a fake OpenAI, a dir for outboxes. */
export interface SdkHarness {
  collector: TestCollector
  fake: FakeOpenAI
  owner: TestUser
  projectId: string
  key: string
  dir: string
  close(): Promise<void>
}

export async function startSdkHarness(prefix: string): Promise<SdkHarness> {
  const collector = await startTestCollector()
  const fake = await startFakeOpenAI()
  const setup = await setupProject(collector)
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    collector,
    fake,
    owner: setup.user,
    projectId: setup.project.id,
    key: setup.key.key,
    dir,
    async close() {
      await fake.close()
      await collector.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

// `pnpm seed`: a demo account, project, API key and a week of realistic records on a running
// collector, through its public API only (so it works against any deployment, not just this tree).
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { api, createProjectWithKey, signIn } from './lib/api.mjs'
import { makeRecords } from './lib/records.mjs'

const HELP = `Usage: pnpm seed [--url URL] [--email EMAIL] [--password PASSWORD] [--records N] [--days D]

Creates on a running collector a demo account (or signs in to it when the email exists), a
project "demo" (or uses the account's project of that name), a new API key, and N realistic LLM
request records spread over the last D days, sent through POST /v1/llm/requests/batch.

  --url URL        collector address (default: $LLMGUARD_ENDPOINT or http://localhost:3000)
  --email EMAIL    account email (default: demo@llmguard.local)
  --password PW    account password (default: a random one, printed at the end;
                   required when the account already exists)
  --records N      how many records to send (default: 2000)
  --days D         spread their timestamps over the last D days (default: 7)
  --project NAME   project name (default: demo)
  -h, --help       this text
`

let args
try {
  args = parseArgs({
    options: {
      url: { type: 'string' },
      email: { type: 'string', default: 'demo@llmguard.local' },
      password: { type: 'string' },
      records: { type: 'string', default: '2000' },
      days: { type: 'string', default: '7' },
      project: { type: 'string', default: 'demo' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values
} catch (err) {
  process.stderr.write(`${err.message}\n\n${HELP}`)
  process.exit(2)
}
if (args.help) {
  process.stdout.write(HELP)
  process.exit(0)
}

const url = args.url ?? process.env.LLMGUARD_ENDPOINT ?? 'http://localhost:3000'
const count = Number(args.records)
const days = Number(args.days)
if (!Number.isInteger(count) || count < 0 || !(days > 0 && days <= 365)) {
  process.stderr.write(`--records must be a whole number ≥ 0 and --days 1–365\n\n${HELP}`)
  process.exit(2)
}
const passwordGiven = args.password !== undefined
const password = args.password ?? randomBytes(12).toString('base64url')
const BATCH = 500

async function main() {
  try {
    await api(url, 'GET', '/healthz')
  } catch (err) {
    throw new Error(`no collector answers at ${url} (${err.cause?.code ?? err.message}); start one with \`pnpm start\` or pass --url`)
  }
  let session
  try {
    session = await signIn(url, args.email, password)
  } catch (err) {
    // the login failed and the email is taken: an existing account, another password
    if (err.code === 'CONFLICT' || err.code === 'INVALID_CREDENTIALS') {
      throw new Error(passwordGiven ? `${args.email} already exists and --password is not its password` : `${args.email} already exists: pass its --password, or choose another --email`)
    }
    throw err
  }
  console.log(session.created ? `created account ${args.email}` : `signed in as ${args.email} (existing account)`)

  const { project, key } = await createProjectWithKey(url, session.accessToken, args.project, { reuse: true })
  console.log(`${project.reused ? 'using the existing' : 'created'} project "${project.name}" (${project.id}) and a new API key`)

  const records = makeRecords(count, { days, seed: Date.now() % 2 ** 31 })
  let accepted = 0
  const rejected = []
  for (let i = 0; i < records.length; i += BATCH) {
    const out = await api(url, 'POST', '/v1/llm/requests/batch', { token: key, body: { records: records.slice(i, i + BATCH) } })
    accepted += out.accepted
    rejected.push(...out.rejected.map((r) => ({ ...r, index: r.index + i })))
    process.stdout.write(`\rsent ${Math.min(i + BATCH, records.length)}/${records.length} records`)
  }
  if (records.length) process.stdout.write('\n')
  const sensitive = records.filter((r) => /@|4242|Ignore previous|SSN|555-/.test(r.prompt)).length
  console.log(
    `stored ${accepted} records over the last ${days} days (${records.filter((r) => r.status === 'error').length} errors, ` +
      `${sensitive} with sensitive content or a prompt injection)`,
  )
  if (rejected.length) {
    console.log(`${rejected.length} records were rejected, e.g. #${rejected[0].index}: ${rejected[0].code} ${rejected[0].message}`)
  }

  console.log(`
  collector  ${url}
  email      ${args.email}
  password   ${passwordGiven ? '(the one you gave)' : password}
  project    ${project.id}
  API key    ${key}

The API key is shown only here: keep it (LLMGUARD_API_KEY, for the SDK and the CLI's outbox commands).
Browse the records from the CLI (login makes an account's only project the default):
  pnpm llmguard login --collector ${url} --email ${args.email}
  pnpm llmguard logs search --search refund
  pnpm llmguard metrics --days 7
or with the key as a Bearer token: curl -H "Authorization: Bearer ${key}" "${new URL(`/v1/projects/${project.id}/logs?search=refund`, url)}"`)
  if (rejected.length) process.exitCode = 1
}

main().catch((err) => {
  process.stderr.write(`seed failed: ${err.message}\n`)
  process.exit(1)
})

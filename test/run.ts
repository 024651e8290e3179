// npm test: tap over test/, then the run-wide secret check (helpers/secrets.ts).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const run = mkdtempSync(join(tmpdir(), 'ferry-test-run-'))
const tap = spawnSync(process.execPath, [join('node_modules', 'tap', 'dist', 'esm', 'run.mjs'), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, FERRY_TEST_RUN: run } })
const lines = (file: string): string[] => existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as string) : []
const secrets = [...new Set(lines(join(run, 'secrets.txt')))]
const files = [
  ...(existsSync(join(run, 'output')) ? readdirSync(join(run, 'output')).map(f => join(run, 'output', f)) : []),
  ...lines(join(run, 'files.txt')).filter(f => existsSync(f)),
]
const found: string[] = []
for (const f of files) {
  const text = readFileSync(f, 'utf8')
  for (const s of secrets) {
    const forms = [s, Buffer.from(s).toString('base64')]
    if (forms.some(x => text.includes(x))) found.push(`${f}: a registered secret (${s.slice(0, 3)}...)`)
  }
}
process.stdout.write(`\n# secret check: ${secrets.length} secrets, ${files.length} files of output and audit logs, ${found.length} leaks\n`)
for (const x of found) process.stdout.write(`not ok - ${x}\n`)
rmSync(run, { recursive: true, force: true })
process.exitCode = tap.status !== 0 ? (tap.status ?? 1) : found.length > 0 ? 1 : 0

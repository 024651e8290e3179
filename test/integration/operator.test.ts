// The operator's first hour, as a new operator met it following the README:
// per-command help, flags a command does not take, a password line without
// apache2-utils, a busy port, a region file with several problems, a bucket
// that does not exist or credentials that are missing, the JSON Schema, and
// the README's configuration reference kept in step with the schema.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'

import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { configurationTable, TABLE_END, TABLE_START } from '../../src/config/reference.ts'
import { regionJsonSchema } from '../../src/config/schema.ts'
import { CLI, ROOT, startFerry } from '../helpers/ferry.ts'
import { freePort, scratchDir } from '../helpers/procs.ts'
import { startS3Server } from '../helpers/s3-server.ts'
import { registerSecret } from '../helpers/secrets.ts'

const dir = scratchDir('ferry-operator-')

async function ferry (args: string[], input?: string): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT })
    let stdout = ''; let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('close', code => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.end(input ?? '')
  })
}

t.test('each command has its own --help, and refuses flags it does not take', async t => {
  const serve = await ferry(['serve', '--help'])
  t.equal(serve.code, 0)
  t.match(serve.stdout, 'usage: ferry serve')
  t.match(serve.stdout, '--listen HOST:PORT')
  t.notMatch(serve.stdout, '--dead-letters', 'serve\'s help shows serve\'s flags only')
  const replicate = await ferry(['replicate', '--help'])
  t.match(replicate.stdout, '--dead-letters')
  t.notMatch(replicate.stdout, '--workers')
  const all = await ferry(['--help'])
  for (const c of ['serve', 'check', 'replicate', 'audit', 'robot', 'passwd', 'schema']) t.match(all.stdout, new RegExp(`\\n  ${c} `), `ferry --help lists ${c}`)

  const status = await ferry(['check', '--config', 'regions/local.yaml', '--status'])
  t.equal(status.code, 2, 'ferry check --status is a usage error, not silently accepted')
  t.match(status.stderr, /ferry check: Unknown option '--status'/)
  t.match(status.stderr, 'usage: ferry check')
  const none = await ferry(['check'])
  t.equal(none.code, 2)
  t.match(none.stderr, '--config FILE is required')
})

t.test('ferry passwd prints a bcrypt line that verifies, with no other tool', async t => {
  const password = 'operator-Passw0rd'
  registerSecret(password)
  const r = await ferry(['passwd', 'alice'], `${password}\n`)
  t.equal(r.code, 0)
  const [user, hash] = r.stdout.trim().split(':')
  t.equal(user, 'alice')
  t.ok(await bcrypt.compare(password, hash!), 'the hash verifies the password')
  t.notMatch(r.stdout + r.stderr, password, 'the password is not echoed')
  const only = await ferry(['passwd', 'bob', '--hash-only'], `${password}\n`)
  t.match(only.stdout.trim(), /^\$2[aby]\$10\$.{53}$/, '--hash-only: a hash for auth.users')
  t.equal((await ferry(['passwd'], 'x\n')).code, 2, 'a NAME is needed')
})

t.test('a busy port is one line naming the address, not a stack trace', async t => {
  const port = await freePort()
  const server = createServer()
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const r = await ferry(['serve', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'busy'), '--upstream', 'http://127.0.0.1:1'])
  t.equal(r.code, 1)
  t.match(r.stderr, `ferry serve: cannot listen on 127.0.0.1:${port}: the address is in use`)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
})

t.test('ferry check reports every problem at once, each once, with its rule', async t => {
  const file = join(dir, 'many.yaml')
  writeFileSync(file, [
    'store: {type: s3, bucket: b}',
    'upstreams:',
    '  - {name: one, url: "http://127.0.0.1:1"}',
    '  - {name: two, url: "http://127.0.0.1:2"}',
    '',
  ].join('\n'))
  const r = await ferry(['check', '--config', file])
  t.equal(r.code, 1)
  const lines = r.stderr.trim().split('\n')
  t.match(r.stderr, `${file}: store.bucket: expected a bucket name: 3 to 222 characters`, 'the bucket rule, not just "a bucket name"')
  t.match(r.stderr, `${file}: l1: expected a local disk tier`, 'the missing l1 is not hidden behind the bucket')
  t.match(r.stderr, `${file}: upstreams[0].prefix: expected a prefix (only the default upstream may have none`, 'two upstreams with no default and no prefix are refused')
  t.match(r.stderr, `${file}: upstreams[1].prefix: expected a prefix`)
  t.equal(new Set(lines).size, lines.length, 'no problem is reported twice')
  const listen = join(dir, 'listen.yaml')
  writeFileSync(listen, 'listen: localhost\nupstreams: [{name: a, url: "http://127.0.0.1:1"}]\n')
  const l = await ferry(['check', '--config', listen])
  t.equal(l.stderr.trim().split('\n').length, 1, 'a bad listen address is one problem, not two')
})

t.test('a bucket that does not exist, or missing credentials, are named in ferry\'s own log', async t => {
  const s3 = await startS3Server(join(dir, 's3'))
  t.teardown(() => s3.close())
  const config = (bucket: string): Record<string, unknown> => ({
    store: { type: 's3', bucket, endpoint: s3.endpoint, region: 'us-east-1' },
    l1: { path: join(dir, `l1-${bucket}`), maxBytes: '64MiB' },
    upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }],
  })
  const missing = await startFerry({ config: config('no-such-bucket') })
  t.teardown(() => missing.stop())
  const [line] = await missing.waitForLogs(l => l.msg === 'the region\'s blob store is not usable: pulls that need it fail until it is', 1)
  t.match(String(line?.err), /no-such-bucket.*NoSuchBucket/, 'the bucket and the cause')

  const noCredentials = await startFerry({
    config: config(s3.bucket),
    env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_PROFILE: '' },
  })
  t.teardown(() => noCredentials.stop())
  const [creds] = await noCredentials.waitForLogs(l => l.msg === 'the region\'s blob store is not usable: pulls that need it fail until it is', 1)
  t.match(String(creds?.err), /credentials/i, 'missing credentials are named')
})

t.test('ferry schema prints the region file\'s JSON Schema', async t => {
  const r = await ferry(['schema'])
  t.equal(r.code, 0)
  const schema = JSON.parse(r.stdout) as { $schema: string, properties: Record<string, unknown>, additionalProperties: boolean }
  t.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#', 'draft-07, which yaml-language-server reads')
  for (const f of ['upstreams', 'store', 'state', 'auth', 'replication', 'cache']) t.ok(schema.properties[f], `describes ${f}`)
  t.equal(schema.additionalProperties, false, 'unknown fields are errors for editors too')
})

t.test('what is generated from the schema is current: the README\'s reference, the schema file, the editor line', async t => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const committed = readme.slice(readme.indexOf(TABLE_START), readme.indexOf(TABLE_END) + TABLE_END.length)
  t.equal(committed, configurationTable(), 'README.md\'s configuration reference matches the schema (run npm run docs)')
  t.equal(readFileSync(join(ROOT, 'regions', 'ferry-region.schema.json'), 'utf8'), JSON.stringify(regionJsonSchema(), null, 2) + '\n', 'regions/ferry-region.schema.json matches (run npm run docs)')
  for (const f of readdirSync(join(ROOT, 'regions')).filter(n => n.endsWith('.yaml'))) {
    t.match(readFileSync(join(ROOT, 'regions', f), 'utf8').split('\n')[0], '# yaml-language-server: $schema=./ferry-region.schema.json', `${f} names the schema for editors`)
  }
  const documented = [...configurationTable().matchAll(/^\| `([^`]+)` \|/gm)].map(m => m[1])
  for (const field of ['cache.smallBlobMemory', 'upstreams[].timeouts.bodyIdle', 'state.lease']) t.ok(documented.includes(field), `${field} is documented`)
})

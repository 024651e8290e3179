// The ferry command as an operator types it.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { CLI, ROOT } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, pushImage, digestOf } from '../helpers/images.ts'
import { freePort, startProc, scratchDir } from '../helpers/procs.ts'
import { startRegistry } from '../helpers/registry.ts'

const run = promisify(execFile)

async function ferry (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd: ROOT })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

t.test('ferry check accepts every shipped region file', async t => {
  for (const f of ['regions/local.yaml', 'regions/eu-west.yaml', 'regions/us-east.yaml']) {
    const r = await ferry(['check', '--config', f])
    t.equal(r.code, 0, f)
    t.match(r.stdout, /ok/)
  }
})

t.test('ferry check says which ?ns= reaches which upstream, and that any other is refused', async t => {
  const local = await ferry(['check', '--config', 'regions/local.yaml'])
  t.match(local.stdout, 'upstream docker-hub: /v2/docker.io/..., ?ns= docker.io, index.docker.io, registry-1.docker.io, registry.hub.docker.com; the default')
  t.match(local.stdout, 'upstream ghcr: /v2/ghcr.io/..., ?ns= ghcr.io\n')
  t.match(local.stdout, 'any other ?ns=: refused (404 NAME_UNKNOWN)')
  // Docker Hub's images from another mirror: its prefix is the name containerd gives (?ns=docker.io)
  const file = join(scratchDir('ferry-cli-'), 'mirror.yaml')
  writeFileSync(file, 'hostnames: [ferry.example:5000]\nupstreams:\n  - name: gcr-mirror\n    url: https://mirror.gcr.io\n    prefix: docker.io\n    default: true\n')
  const mirror = await ferry(['check', '--config', file])
  t.equal(mirror.code, 0)
  t.match(mirror.stdout, 'upstream gcr-mirror: /v2/docker.io/..., ?ns= docker.io, mirror.gcr.io; the default')
  t.match(mirror.stdout, 'the Host a request comes with, ferry.example:5000;')
})

t.test('ferry check names the file, the field and what was expected', async t => {
  const dir = scratchDir('ferry-cli-')
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'listen: localhost\nupstreams:\n  - name: hub\n    url: not a url\n    tagTTL: forever\n')
  const r = await ferry(['check', '--config', file])
  t.equal(r.code, 1)
  t.match(r.stderr, `${file}: listen: expected HOST:PORT`)
  t.match(r.stderr, `${file}: upstreams[0].url: expected an http:// or https:// URL`)
  t.match(r.stderr, `${file}: upstreams[0].tagTTL: expected a duration`)
  writeFileSync(file, 'upstreams: [\n')
  const y = await ferry(['check', '--config', file])
  t.equal(y.code, 1)
  t.match(y.stderr, 'expected valid YAML')
  const missing = await ferry(['check', '--config', join(dir, 'nope.yaml')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, 'nope.yaml: (file): expected a readable YAML file, got ENOENT')
})

t.test('ferry check explains a bad region setup: store, state, l1, workers, secrets in the file', async t => {
  const dir = scratchDir('ferry-cli-')
  const file = join(dir, 'region.yaml')
  const up = 'upstreams:\n  - name: hub\n    url: http://127.0.0.1:1\n'
  const cases: [string, string[]][] = [
    ['store: {type: azure}\n', ['store.type: expected one of fs, s3, gcs, got "azure"']],
    ['store: {type: s3, bucket: b}\n', ['store.bucket: expected a bucket name']],
    ['store: {type: s3, bucket: ferry-blobs}\n', ['l1: expected a local disk tier ({path, maxBytes}) in front of the s3 store']],
    ['store: {type: gcs, bucket: my-bucket, endpoint: http://x}\nl1: {path: /tmp/l1, maxBytes: 1GiB}\n', ['store.endpoint: expected no such field for store type gcs']],
    ['state: {type: redis, url: "redis://:hunter2@redis:6379"}\n', ['state.url: expected a URL without a password (name the variable holding it in state.passwordEnv), got "redis://:***@redis:6379"']],
    ['state: {type: redis, url: "http://redis"}\n', ['state.url: expected a redis:// or rediss:// URL']],
    ['state: {type: redis, url: "redis://redis:6379", lease: 100ms}\n', ['state.lease: expected at least 1s']],
    ['state: {type: redis, url: "redis://redis:6379"}\nworkers: 4\n', ['workers: expected 1 with state type redis (run more proxies instead), got 4']],
    ['peer: {advertise: "https://x:5000/path"}\n', ['peer.advertise: expected an http://HOST:PORT URL']],
    ['auth: {users: {eve: hunter2}}\n', ['auth.users.eve: expected a bcrypt hash ($2b$...), never a password, got "(not shown)"']],
    ['auth: {htpasswd: /x, access: [{repositories: ["a/*"], allow: {"user:x": owner}}]}\n', ['auth.access[0].allow.user:x: expected one of reader, writer, admin']],
  ]
  for (const [doc, expected] of cases) {
    writeFileSync(file, doc + up)
    const r = await ferry(['check', '--config', file])
    t.equal(r.code, 1, doc)
    for (const e of expected) t.match(r.stderr, `${file}: ${e}`, doc)
    t.notMatch(r.stderr, 'hunter2', 'a secret in the file is never echoed')
  }
})

t.test('ferry serve refuses a bad file the same way, without starting', async t => {
  const dir = scratchDir('ferry-cli-')
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'upstreams:\n  - name: hub\n    url: http://127.0.0.1:1\n    connections: 0\n')
  const r = await ferry(['serve', '--config', file])
  t.equal(r.code, 1)
  t.match(r.stderr, `${file}: upstreams[0].connections: expected an integer from 1 to 1024`)
})

t.test('unknown commands and flags print the usage', async t => {
  const r = await ferry(['frobnicate'])
  t.equal(r.code, 2)
  t.match(r.stderr, 'usage:')
  const f = await ferry(['serve', '--colour'])
  t.equal(f.code, 2)
})

t.test('ferry serve --listen --data --upstream serves pulls with no config file', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const img = await image()
  await pushImage(upstream.url, 'quick/start', 'v1', img)
  const port = await freePort()
  const data = scratchDir('ferry-f-')
  const proc = startProc(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--upstream', upstream.url])
  t.teardown(() => proc.stop())
  await proc.waitFor(/"msg":"listening"/)
  const m = await get(`http://127.0.0.1:${port}/v2/quick/start/manifests/v1`, { accept: img.manifest.mediaType })
  t.equal(m.status, 200)
  t.equal(m.header('docker-content-digest'), img.manifest.digest)
  const b = await get(`http://127.0.0.1:${port}/v2/quick/start/blobs/${img.layers[0]!.digest}`)
  t.equal(digestOf(b.body), img.layers[0]!.digest)
  // and SIGTERM stops it cleanly
  await proc.stop('SIGTERM')
  t.equal(proc.child.exitCode, 0)
})

// `ferry hosts`: node configuration written from the region file, then used
// by real clients. containerd pulls through two regions in order, goes to
// the second when the first is killed, falls back to the upstream itself
// when both are down, and with --strict fails instead of reaching it.
// Podman and dockerd pull through what it writes for them. `--check` reads
// the written configuration back and flags a broken one.
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { startContainerd, type Containerd } from '../helpers/containerd.ts'
import { startDockerd } from '../helpers/dockerd.ts'
import { CLI, startFerry, type Ferry } from '../helpers/ferry.ts'
import { image, pushImage, type Image } from '../helpers/images.ts'
import { scratchDir } from '../helpers/procs.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'

const run = promisify(execFile)
const dir = scratchDir('ferry-hosts-')
let upstream: Registry
let a: Ferry
let b: Ferry
let containerd: Containerd
const images: Record<string, Image> = {}

async function hosts (...args: string[]): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const r = await run(process.execPath, [CLI, 'hosts', ...args])
    return { ...r, code: 0 }
  } catch (err) {
    const e = err as { stdout: string, stderr: string, code: number }
    return { stdout: e.stdout, stderr: e.stderr, code: e.code }
  }
}

const isServed = (repo: string) => (l: Record<string, unknown>): boolean => l.msg === 'request' && typeof l.path === 'string' && l.path.startsWith(`/v2/${repo}/manifests/`) && l.status === 200
/** Manifest requests for `repo` that `f` answered, once its log has them (log lines are written asynchronously). */
async function served (f: Ferry, repo: string, atLeast = 1): Promise<number> { return (await f.waitForLogs(isServed(repo), atLeast, 3000)).length }

async function ctrPull (hostsDir: string, repo: string): Promise<void> {
  await run('ctr', ['--address', containerd.sock, 'images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', `${upstream.host}/${repo}:v1`], { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 })
}

t.before(async () => {
  upstream = await startRegistry()
  for (const repo of ['team/one', 'team/two', 'team/three', 'team/four', 'library/hello']) {
    images[repo] = await image({ files: { 'name.txt': `${repo}\n` } })
    await pushImage(upstream.url, repo, 'v1', images[repo]!)
  }
  const config = { upstreams: [{ name: 'up', url: upstream.url, prefix: 'up.test', default: true }] }
  a = await startFerry({ config })
  b = await startFerry({ config })
  containerd = await startContainerd({})
  const regions = `a=${a.url},b=${b.url}`
  for (const [out, extra] of [['both', []], ['strict', ['--strict']]] as const) {
    const r = await hosts('--config', a.configPath, '--format', 'containerd', '--regions', regions, '--dial-timeout', '1s', '--out', join(dir, out), ...extra)
    if (r.code !== 0) throw new Error(`ferry hosts: ${r.stderr}`)
  }
})
t.teardown(async () => { await containerd?.stop(); await a?.stop(); await b?.stop(); await upstream?.stop() })

t.test('containerd: hosts.toml per registry host, the regions in order', async t => {
  const toml = readFileSync(join(dir, 'both', upstream.host, 'hosts.toml'), 'utf8')
  t.match(toml, `server = "${upstream.url}"`, 'the upstream is the server')
  t.ok(toml.indexOf(`[host."${a.url}"]`) < toml.indexOf(`[host."${b.url}"]`), 'region a first, then b')
  t.match(toml, /capabilities = \["pull", "resolve"\]/)
  await ctrPull(join(dir, 'both'), 'team/one')
  t.ok(await served(a, 'team/one') >= 1, 'the pull went through region a')
  t.equal(b.logs().filter(isServed('team/one')).length, 0, 'not b')
})

t.test('podman and dockerd pull through what ferry hosts writes for them', async t => {
  requireBinary('podman', 'podman')
  requireBinary('unshare', 'util-linux')
  const out = join(dir, 'podman')
  const r = await hosts('--config', a.configPath, '--format', 'podman', '--regions', `a=${a.url}`, '--strict', '--out', out)
  t.equal(r.code, 0, r.stderr)
  const conf = readFileSync(join(out, 'registries.conf'), 'utf8')
  t.match(conf, `location = "${a.host}/up.test"`, 'strict: region a is the location, under the upstream\'s prefix')
  t.notMatch(conf, `location = "${upstream.host}"`, 'the upstream is named nowhere')
  const p = scratchDir('ferry-hosts-podman-')
  for (const sub of ['root', 'run', 'tmp', 'varlib']) mkdirSync(join(p, sub))
  const podman = `CONTAINERS_REGISTRIES_CONF=${join(out, 'registries.conf')} podman --root ${p}/root --runroot ${p}/run --tmpdir ${p}/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file`
  const { stdout } = await run('unshare', ['-m', 'bash', '-c', ['set -e', 'mount -t tmpfs tmpfs /run', 'mkdir -p /var/lib/containers', `mount --bind ${p}/varlib /var/lib/containers`,
    `${podman} pull ${upstream.host}/team/four:v1`, `${podman} images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}'`].join('\n')], { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 })
  t.match(stdout, `${upstream.host}/team/four:v1 ${images['team/four']!.manifest.digest}`, 'podman has the image, with its digest')
  t.ok(await served(a, 'up.test/team/four') >= 1, 'through region a, by the prefix path')

  const docker = join(dir, 'docker')
  const d = await hosts('--config', a.configPath, '--format', 'docker', '--regions', `a=${a.url}`, '--out', docker)
  t.equal(d.code, 0)
  t.match(d.stderr, /only covers Docker Hub/, 'it says what Docker\'s mirrors cover')
  const daemon = JSON.parse(readFileSync(join(docker, 'daemon.json'), 'utf8')) as { 'registry-mirrors': string[], 'insecure-registries': string[] }
  t.same(daemon['registry-mirrors'], [a.url])
  const engine = await startDockerd(daemon['insecure-registries'], daemon['registry-mirrors'])
  t.teardown(() => engine.stop())
  const pulled = await engine.docker(['pull', 'hello:v1'])
  t.match(pulled, images['library/hello']!.manifest.digest, 'docker pulled Docker Hub\'s name through the mirror, with the digest')
  t.ok(await served(a, 'library/hello') >= 1, 'through region a')
})

t.test('region a down: the pull goes to b', async t => {
  await a.stop()
  await ctrPull(join(dir, 'both'), 'team/two')
  t.ok(await served(b, 'team/two') >= 1, 'region b served it')
})

t.test('both down: the upstream itself, unless --strict', async t => {
  await b.stop()
  const before = upstream.count('GET', '/v2/team/three/manifests/v1') + upstream.count('HEAD', '/v2/team/three/manifests/v1')
  await t.rejects(ctrPull(join(dir, 'strict'), 'team/three'), 'with --strict and both regions down, the pull fails')
  const after = upstream.count('GET', '/v2/team/three/manifests/v1') + upstream.count('HEAD', '/v2/team/three/manifests/v1')
  t.equal(after, before, 'and the node never asked the upstream')
  await ctrPull(join(dir, 'both'), 'team/three')
  t.ok(upstream.count('GET', '/v2/team/three/manifests/v1') + upstream.count('HEAD', '/v2/team/three/manifests/v1') > after, 'without --strict it falls back to the upstream')
})

t.test('--check: the hops, and the classic mistakes', async t => {
  const good = await hosts('--check', join(dir, 'both'))
  t.equal(good.code, 0, good.stdout)
  t.match(good.stdout, new RegExp(`${upstream.host.replace(/\./g, '\\.')}:\\n  1\\. ${a.url.replace(/\./g, '\\.')} \\(pull, resolve\\)\\n  2\\. ${b.url.replace(/\./g, '\\.')}`), 'a, then b')
  t.match(good.stdout, /3\. http:\/\/127\.0\.0\.1:\d+ \(the server/, 'then the upstream')
  const strict = await hosts('--check', join(dir, 'strict'))
  t.notMatch(strict.stdout, /\(the server:/, 'strict: no server hop')
  t.match(strict.stdout, /3\. nothing else/)

  const bad = join(dir, 'bad')
  mkdirSync(join(bad, 'certs.d', 'docker.io'), { recursive: true })
  writeFileSync(join(bad, 'certs.d', 'docker.io', 'hosts.toml'), [
    'server = "https://registry-1.docker.io"',
    '[host."https://ferry.example:5000/docker.io"]', '  capabilities = ["pull"]',
    '[host."https://registry-1.docker.io"]', '  capabilities = ["pull", "resolve"]',
  ].join('\n'))
  writeFileSync(join(bad, 'daemon.json'), JSON.stringify({ 'registry-mirrors': ['https://ferry.example:5000/docker.io'] }))
  const r = await hosts('--check', bad)
  t.equal(r.code, 1, 'problems: exit 1')
  t.match(r.stdout, /a path in a mirror URL/)
  t.match(r.stdout, /no "resolve": tags are resolved by the next hop/)
  t.match(r.stdout, /https with no ca/)
  t.match(r.stdout, /the mirror is also the server/)
  t.match(r.stdout, /Docker does not allow a path/)
  const unusable = await hosts('--config', a.configPath, '--format', 'containerd', '--regions', 'a=ftp://x', '--out', join(dir, 'x'))
  t.equal(unusable.code, 2, 'a region that is not http(s): a usage error')
})

import t from 'tap'
import { parseRegion } from '../../src/config/parse.ts'

t.test('the quick flags make a whole config', async t => {
  const { config, problems } = parseRegion({}, 'x.yaml', { listen: '127.0.0.1:5000', data: '/tmp/f', upstream: 'http://127.0.0.1:5001' })
  t.same(problems, [])
  t.equal(config?.listen.port, 5000)
  t.equal(config?.data, '/tmp/f')
  t.equal(config?.defaultUpstream?.url.origin, 'http://127.0.0.1:5001')
  t.equal(config?.defaultUpstream?.tagTTLMs, 5 * 60_000)
})

t.test('--upstream replaces the default upstream of the file', async t => {
  const { config } = parseRegion({ upstreams: [{ name: 'hub', url: 'https://registry-1.docker.io', prefix: 'docker.io', default: true }] }, 'x.yaml', { upstream: 'http://127.0.0.1:1' })
  t.equal(config?.defaultUpstream?.name, 'default')
  t.equal(config?.upstreams.length, 2)
  t.ok(config?.upstreams.find(u => u.name === 'hub')?.dockerHub, 'Docker Hub is recognised by its host')
})

t.test('every problem names the field and what was expected', async t => {
  const { config, problems } = parseRegion({
    listen: 'nope',
    colour: 'blue',
    upstreams: [
      { name: 'A', url: 'ftp://x', tagTTL: 'soon', credentials: { username: 'u', passwordEnv: 'has-dash' } },
      { name: 'b', url: 'http://h', prefix: 'docker.io', default: true },
      { name: 'b', url: 'http://h/path', prefix: 'docker.io', default: true, staleIfError: -1 },
    ],
  }, 'bad.yaml')
  t.equal(config, undefined)
  const fields = problems.map(p => p.field)
  for (const f of ['listen', 'colour', 'upstreams[0].name', 'upstreams[0].url', 'upstreams[0].tagTTL', 'upstreams[0].credentials.passwordEnv',
    'upstreams[2].url', 'upstreams[2].staleIfError']) {
    t.ok(fields.includes(f), `reports ${f}`)
  }
  t.ok(problems.find(p => p.field === 'upstreams[0].tagTTL')?.expected.includes('duration'))
})

t.test('two defaults, or two upstreams with one name or prefix, are problems', async t => {
  const { problems } = parseRegion({ upstreams: [
    { name: 'a', url: 'http://h', prefix: 'docker.io', default: true },
    { name: 'a', url: 'http://i', prefix: 'docker.io', default: true },
  ] }, 'x.yaml')
  t.ok(problems.some(p => p.field === 'upstreams' && p.expected.includes('at most one upstream with default')))
  t.ok(problems.some(p => p.field === 'upstreams[1].name'))
  t.ok(problems.some(p => p.field === 'upstreams[1].prefix'))
})

t.test('durations and sizes in the forms operators write', async t => {
  const { config } = parseRegion({ upstreams: [{ name: 'a', url: 'http://h', tagTTL: '90s', staleIfError: 3600, timeouts: { connect: '250ms' } }], cache: { manifestMemory: '16MiB' } }, 'x.yaml')
  t.equal(config?.upstreams[0]?.tagTTLMs, 90_000)
  t.equal(config?.upstreams[0]?.staleIfErrorMs, 3_600_000)
  t.equal(config?.upstreams[0]?.timeouts.connectMs, 250)
  t.equal(config?.manifestCacheBytes, 16 * 1024 * 1024)
})

t.test('no upstream at all is a problem', async t => {
  const { problems } = parseRegion({}, 'x.yaml')
  t.ok(problems.some(p => p.field === 'upstreams'))
})

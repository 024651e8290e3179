// The console of a region: two proxies sharing Redis and an S3 store. Each
// proxy's console shows the whole region: the proxies seen, the traffic and
// pull counts of both (added to Redis every minute and when asked), and a
// console session made on one proxy is taken by the other (its key comes
// from the region secret).
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_MANIFEST, pushImage, type Image } from '../helpers/images.ts'
import { freePort, scratchDir } from '../helpers/procs.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { startS3Server, type S3Server } from '../helpers/s3-server.ts'
import { registerSecret } from '../helpers/secrets.ts'

const PASSWORD = 'ops-Region-Console-1'
const API = '/_ferry/api/v1/'
const s3Dir = scratchDir('ferry-console-s3-')
const dir = scratchDir('ferry-console-region-')
let upstream: Registry
let redis: RedisServer
let s3: S3Server
let images: Image[]
const proxies: Ferry[] = []
const auth = { authorization: `Basic ${Buffer.from(`ops:${PASSWORD}`).toString('base64')}` }

async function startProxy (name: string): Promise<Ferry> {
  const data = scratchDir(`ferry-console-${name}-`)
  return await startFerry({
    data,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
    config: {
      region: 'eu',
      listen: `127.0.0.1:${await freePort()}`,
      data,
      state: { type: 'redis', url: redis.url, keyPrefix: 'ferry:console:' },
      store: { type: 's3', bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1', prefix: 'region/' },
      l1: { path: join(data, 'l1'), maxBytes: '1GiB' },
      upstreams: [{ name: 'up', url: upstream.url, default: true }],
      auth: { htpasswd: join(dir, 'htpasswd'), access: [{ repositories: ['**'], allow: { 'user:ops': 'admin' } }] },
    },
  })
}

t.before(async () => {
  registerSecret(PASSWORD)
  await writeFile(join(dir, 'htpasswd'), `ops:${bcrypt.hashSync(PASSWORD, 8)}\n`)
  upstream = await startRegistry()
  redis = await startRedis()
  s3 = await startS3Server(s3Dir)
  images = [await image(), await image()]
  await pushImage(upstream.url, 'team/one', 'v1', images[0]!)
  await pushImage(upstream.url, 'team/two', 'v1', images[1]!)
  proxies.push(await startProxy('a'), await startProxy('b'))
})
t.teardown(async () => {
  for (const p of proxies) await p.stop()
  await s3?.close()
  await redis?.stop()
  await upstream?.stop()
  await rm(s3Dir, { recursive: true, force: true })
})

async function pull (f: Ferry, repo: string, img: Image): Promise<void> {
  const m = await get(`${f.url}/v2/${repo}/manifests/v1`, { ...auth, accept: OCI_MANIFEST })
  if (m.status !== 200) throw new Error(`${repo} through ${f.url}: ${m.status}`)
  for (const b of [img.config, ...img.layers]) {
    const r = await get(`${f.url}/v2/${repo}/blobs/${b.digest}`, auth)
    if (r.status !== 200 || !r.body.equals(b.bytes)) throw new Error(`${repo} blob: ${r.status}`)
  }
}

t.test('each proxy\'s console shows the whole region', async t => {
  const [a, b] = proxies as [Ferry, Ferry]
  await pull(a, 'team/one', images[0]!)    // misses, through a
  await pull(b, 'team/one', images[0]!)    // hits, through b (the region store holds them)
  await pull(b, 'team/two', images[1]!)    // misses, through b
  await pull(a, 'team/two', images[1]!)    // hits, through a
  // a's figures reach Redis when a is asked (or within a minute); b's when b is
  const fromB = await get(`${b.url}${API}overview`, auth)
  t.equal(fromB.status, 200)
  const fromA = (await get(`${a.url}${API}overview`, auth)).json<{ proxies: { proxy: string }[], windows: Record<string, { hits: number, misses: number, pulls: number }> }>()
  t.same(fromA.proxies.map(p => p.proxy).sort(), [a.url, b.url].sort(), 'both proxies seen')
  t.comment(JSON.stringify(fromA.windows['1h']))
  t.equal(fromA.windows['1h']!.misses, 4, 'the region\'s misses: two blobs of each image, once')
  t.equal(fromA.windows['1h']!.hits, 4, 'and its hits, on either proxy')
  t.equal(fromA.windows['1h']!.pulls, 4, 'four manifest pulls in all')
  t.equal((await get(`${a.url}${API}tags?repository=team/one`, auth)).status, 200)
  const tags = (await get(`${b.url}${API}tags?repository=team/one`, auth)).json<{ tags: { tag: string, pulls: number }[] }>()
  t.equal(tags.tags[0]!.pulls, 2, 'pull counts of both proxies')
})

t.test('a console session made on one proxy is taken by the other', async t => {
  const [a, b] = proxies as [Ferry, Ferry]
  const res = await fetch(`${a.url}${API}session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ops', password: PASSWORD }) })
  t.equal(res.status, 200)
  const cookie = res.headers.getSetCookie().map(c => c.split(';')[0]).join('; ')
  const who = (await get(`${b.url}${API}session`, { cookie })).json<{ user: string, admin: boolean }>()
  t.same({ user: who.user, admin: who.admin }, { user: 'ops', admin: true }, 'b knows the session a made')
  t.equal((await get(`${b.url}${API}robots`, { cookie })).status, 200)
})

// The upstream's rate-limit budget, against an upstream that counts manifest
// GETs and reports RateLimit-Limit / RateLimit-Remaining as Docker Hub does
// (HEADs free), and answers 429 past the limit: while the budget is nearly
// spent, cached tags are served stale with a Warning instead of being
// revalidated, and pulls with nothing cached still go out; once spent, a
// cold pull gets 429 with Retry-After while cached tags keep being served;
// when the budget is back, tags are revalidated with a HEAD, not a GET.
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_MANIFEST, pushImage, type Image } from '../helpers/images.ts'
import { startRateReporting, type RateReporting } from '../helpers/rate-reporting.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'

let upstream: Registry
let hub: RateReporting
let ferry: Ferry
const imgs: Record<string, Image> = {}
const LIMIT = 100

t.before(async () => {
  upstream = await startRegistry()
  for (const tag of ['v1', 'v2', 'v3']) {
    imgs[tag] = await image({ files: { 'tag.txt': `${tag}\n` } })
    await pushImage(upstream.url, 'team/app', tag, imgs[tag]!)
  }
  hub = await startRateReporting(upstream.url, LIMIT, 21600, true)
  ferry = await startFerry({ config: { upstreams: [{ name: 'hub', url: hub.url, default: true, tagTTL: '1s', staleIfError: '1h' }] } })
})
t.teardown(async () => { await ferry?.stop(); await hub?.stop(); await upstream?.stop() })

const pull = async (tag: string): ReturnType<typeof get> => await get(`${ferry.url}/v2/team/app/manifests/${tag}`, { accept: OCI_MANIFEST })
const pastTTL = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 1100)) }

t.test('budget nearly spent: cached tags are served stale, cold pulls still go out', async t => {
  t.equal((await pull('v1')).status, 200, 'v1 cached while the budget is whole')
  hub.setRemaining(3)
  t.equal((await pull('v2')).status, 200, 'a cold pull goes out (and brings the report: 2 left)')
  await pastTTL()
  const heads = hub.seen('HEAD', '/v2/team/app/manifests/v1')
  const gets = hub.seen('GET', '/v2/team/app/manifests/v1')
  const stale = await pull('v1')
  t.equal(stale.status, 200)
  t.ok(stale.body.equals(imgs.v1!.manifest.bytes), 'the cached manifest')
  t.equal(stale.header('warning'), '110 ferry "served stale: upstream rate limit nearly spent"', 'with a Warning that says why')
  t.equal(hub.seen('HEAD', '/v2/team/app/manifests/v1'), heads, 'no revalidation was sent')
  t.equal(hub.seen('GET', '/v2/team/app/manifests/v1'), gets)
  const metrics = (await get(`${ferry.url}/metrics`)).body.toString()
  t.match(metrics, /ferry_upstream_ratelimit_remaining\{upstream="hub"\} 2\b/, 'the headroom is exported')
  t.match(metrics, /ferry_upstream_ratelimit_limit\{upstream="hub"\} 100\b/)
})

t.test('budget spent: a cold pull gets 429 with Retry-After; cached tags are still served', async t => {
  hub.setRemaining(0)
  const cold = await get(`${ferry.url}/v2/team/app/manifests/v3`, { accept: OCI_MANIFEST })
  t.equal(cold.status, 429, 'the upstream\'s 429 is passed on')
  t.equal(cold.header('retry-after'), '3600', 'with its Retry-After')
  t.equal((JSON.parse(cold.body.toString()) as { errors: { code: string }[] }).errors[0]!.code, 'TOOMANYREQUESTS')
  t.match((await get(`${ferry.url}/metrics`)).body.toString(), /ferry_upstream_ratelimit_reset_seconds\{upstream="hub"\} 3600\b/, 'the time to reset is exported, from Retry-After')
  await pastTTL()
  const cached = await pull('v2')
  t.equal(cached.status, 200, 'v2, cached, is served')
  t.match(cached.header('warning'), /served stale/)
})

t.test('budget back: tags are revalidated with a HEAD, which costs nothing', async t => {
  hub.setRemaining(LIMIT)
  // a cold pull brings the new report
  t.equal((await pull('v3')).status, 200)
  await pastTTL()
  const heads = hub.seen('HEAD', '/v2/team/app/manifests/v1')
  const gets = hub.seen('GET', '/v2/team/app/manifests/v1')
  const fresh = await pull('v1')
  t.equal(fresh.status, 200)
  t.equal(fresh.header('warning'), undefined, 'no Warning')
  t.equal(hub.seen('HEAD', '/v2/team/app/manifests/v1'), heads + 1, 'one HEAD')
  t.equal(hub.seen('GET', '/v2/team/app/manifests/v1'), gets, 'no GET: the tag had not moved')
  t.match((await get(`${ferry.url}/metrics`)).body.toString(), /ferry_upstream_ratelimit_reset_seconds\{upstream="hub"\} 0\b/, 'and the time to reset is back to 0')
})

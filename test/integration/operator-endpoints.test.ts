// The endpoints that are not the registry API (hardening finding 4): the
// region-peer endpoint answers only the region's own proxies (they show the
// secret the region keeps in its Redis; a proxy alone has no such endpoint),
// /metrics can move to its own address and require a token, and /readyz
// says whether the state and the store answer while /healthz only says the
// process lives.
import { mkdtempSync } from 'node:fs'

import { join } from 'node:path'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { freePort, scratchDir } from '../helpers/procs.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { startS3Server, type S3Server } from '../helpers/s3-server.ts'
import { registerSecret } from '../helpers/secrets.ts'

const DIGEST = `sha256:${'a'.repeat(64)}`
const TOKEN = 'metrics-token-for-tests'
const dir = scratchDir('ferry-operator-endpoints-')
let redis: RedisServer
let s3: S3Server
let proxy: Ferry

t.before(async () => {
  registerSecret(TOKEN)
  redis = await startRedis()
  s3 = await startS3Server(join(dir, 's3'))
  const data = mkdtempSync(join(dir, 'proxy-'))
  proxy = await startFerry({
    data,
    config: {
      state: { type: 'redis', url: redis.url, keyPrefix: 'ferry:endpoints:' },
      store: { type: 's3', bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1' },
      l1: { path: join(data, 'l1'), maxBytes: '1GiB' },
      upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }],
    },
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
  })
})
let s3Closed = false
t.teardown(async () => { await proxy?.stop(); if (!s3Closed) await s3?.close(); await redis?.stop() })

t.test('the region-peer endpoint: only for the region\'s proxies, and absent from a proxy alone', async t => {
  const anonymous = await get(`${proxy.url}/_ferry/v1/fills/${DIGEST}`)
  t.equal(anonymous.status, 401, 'no secret: 401')
  t.equal(ociError(anonymous)?.code, 'UNAUTHORIZED')
  t.equal((await get(`${proxy.url}/_ferry/v1/fills/${DIGEST}`, { authorization: 'Bearer guessed' })).status, 401, 'a wrong secret: 401')
  const alone = await startFerry({ config: { upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }] } })
  t.teardown(() => alone.stop())
  const none = await get(`${alone.url}/_ferry/v1/fills/${DIGEST}`)
  t.equal(none.status, 404, 'a proxy without a region has no such endpoint')
})

t.test('/metrics on its own address, behind a token', async t => {
  const port = await freePort()
  const f = await startFerry({
    config: { upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }], metrics: { listen: `127.0.0.1:${port}`, tokenEnv: 'FERRY_METRICS_TOKEN' } },
    env: { FERRY_METRICS_TOKEN: TOKEN },
  })
  t.teardown(() => f.stop())
  t.equal((await get(`${f.url}/metrics`)).status, 404, 'not on the proxy\'s port')
  const without = await get(`http://127.0.0.1:${port}/metrics`)
  t.equal(without.status, 401, 'no token: 401')
  t.match(without.header('www-authenticate'), /^Bearer /)
  t.equal((await get(`http://127.0.0.1:${port}/metrics`, { authorization: 'Bearer wrong' })).status, 401, 'a wrong token: 401')
  const right = await get(`http://127.0.0.1:${port}/metrics`, { authorization: `Bearer ${TOKEN}` })
  t.equal(right.status, 200)
  t.match(right.body.toString(), /ferry_http_request_duration_seconds/, 'the metrics')
  t.equal((await get(`http://127.0.0.1:${port}/v2/`)).status, 404, 'that address serves nothing else')
})

t.test('/readyz follows the state and the store; /healthz only the process', async t => {
  const ready = async (): Promise<{ status: number, failing: string[] }> => {
    const r = await get(`${proxy.url}/readyz`)
    return { status: r.status, failing: r.json<{ failing: string[] }>().failing }
  }
  const until = async (want: number): Promise<{ status: number, failing: string[] }> => {
    let last = await ready()
    for (let i = 0; i < 40 && last.status !== want; i++) { await new Promise(resolve => setTimeout(resolve, 250)); last = await ready() }
    return last
  }
  t.same(await until(200), { status: 200, failing: [] }, 'ready')
  await redis.stop()
  t.same(await until(503), { status: 503, failing: ['state'] }, 'Redis down: not ready, and it says why')
  t.equal((await get(`${proxy.url}/healthz`)).status, 200, 'while it lives')
  await redis.restart()
  t.same(await until(200), { status: 200, failing: [] }, 'Redis back: ready again')
  await s3.close()
  s3Closed = true
  t.same(await until(503), { status: 503, failing: ['store'] }, 'the store down: not ready')
  t.equal((await get(`${proxy.url}/healthz`)).status, 200)
})

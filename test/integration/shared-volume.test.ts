// Two proxies sharing a filesystem store (a shared volume), each with its
// own L1: a blob one proxy cached is streamed from the store into the
// other's L1, with the right bytes, without asking the upstream.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'

import { join } from 'node:path'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { blob, pushBlob } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { scratchDir } from '../helpers/procs.ts'

let upstream: Registry
const proxies: Ferry[] = []
const shared = scratchDir('ferry-shared-store-')

t.before(async () => { upstream = await startRegistry() })
t.teardown(async () => {
  for (const p of proxies) await p.stop()
  await upstream?.stop()
})

async function proxy (): Promise<Ferry> {
  const data = scratchDir('ferry-shared-proxy-')
  const p = await startFerry({ data, config: {
    data,
    store: { type: 'fs', path: shared },
    l1: { path: join(data, 'l1'), maxBytes: '1GiB' },
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
  } })
  proxies.push(p)
  return p
}

t.test('an L1 miss the shared store has is filled from it, byte for byte', async t => {
  const b = blob('application/octet-stream', randomBytes(64 * 1024 * 1024 + 17))
  await pushBlob(upstream.url, 'shared/app', b)
  const first = await proxy()
  const one = await pullBlob(`${first.url}/v2/shared/app/blobs/${b.digest}`)
  t.equal(one.digest, b.digest)
  const inStore = join(shared, 'sha256', b.digest.slice(7, 9), b.digest.slice(7))
  for (let i = 0; i < 100 && !existsSync(inStore); i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(existsSync(inStore), 'in the shared store')
  const before = upstream.count('GET', `/blobs/${b.digest}`)
  const second = await proxy()
  // slow readers, so the fill from the store runs ahead of them
  const pulls = await Promise.all([1, 2, 3].map(() => pullBlob(`${second.url}/v2/shared/app/blobs/${b.digest}`, { bytesPerSecond: 64 * 1024 * 1024 })))
  for (const p of pulls) {
    t.ok(p.complete)
    t.equal(p.digest, b.digest, 'the right bytes')
  }
  t.equal(upstream.count('GET', `/blobs/${b.digest}`), before, 'not asked of the upstream')
  const inL1 = join(second.data, 'l1', 'sha256', b.digest.slice(7, 9), b.digest.slice(7))
  for (let i = 0; i < 100 && !existsSync(inL1); i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(existsSync(inL1), 'kept in the second proxy\'s L1 (its digest verified)')
})

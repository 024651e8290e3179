// One contract for each part of the region state, run against both
// implementations: the embedded one (files under a folder, what one machine
// uses) and Redis (a real redis-server, what a region of proxies shares).
// What one instance writes, another instance on the same backing reads back.

import { rm } from 'node:fs/promises'

import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import { embeddedState } from '../../src/state/embedded/index.ts'
import { connectRedis } from '../../src/state/redis/connect.ts'
import { redisState } from '../../src/state/redis/index.ts'
import type { RegionEvent, RegionState, RobotRecord, TagEntry } from '../../src/state/region-state.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { scratchDir } from '../helpers/procs.ts'

const log = pino({ level: 'silent' })
const dir = scratchDir('ferry-state-contract-')
let redis: RedisServer
const connections: Redis[] = []

t.before(async () => { redis = await startRedis() })
t.teardown(async () => {
  for (const c of connections) c.disconnect()
  await redis?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** Two instances over one backing store: what a second proxy (or a restart) sees. */
interface Subject { readonly a: RegionState, readonly b: RegionState, readonly shared: boolean }

const subjects: Record<string, () => Promise<Subject>> = {
  embedded: async () => {
    const root = join(dir, 'embedded')
    // as workers do: several processes on one folder
    return { a: embeddedState(root, true), b: embeddedState(root, true), shared: false }
  },
  redis: async () => {
    const open = async (): Promise<RegionState> => {
      const c = connectRedis({ url: redis.url, passwordEnv: undefined }, log)
      connections.push(c)
      if (c.status !== 'ready') await new Promise(resolve => c.once('ready', resolve))
      return redisState(c, 'contract:', log)
    }
    return { a: await open(), b: await open(), shared: true }
  },
}

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`
const entry = (n: number, accept: string[], at = n): TagEntry => ({ accept, digest: digest(n), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: n, fetchedAt: at })

for (const [name, make] of Object.entries(subjects)) {
  t.test(`${name} region state`, async t => {
    const { a, b, shared } = await make()
    t.teardown(async () => { await a.close(); await b.close() })

    await t.test('tags: an entry per Accept set, the newest first, eight at most; another instance reads them', async t => {
      const repo = 'docker.io/library/alpine'
      t.same(await a.tags.get(repo, '3.20'), [])
      await a.tags.put(repo, '3.20', entry(1, ['application/vnd.oci.image.index.v1+json'], 1000))
      await a.tags.put(repo, '3.20', entry(2, ['*'], 2000))
      t.same((await b.tags.get(repo, '3.20')).map(e => e.digest), [digest(2), digest(1)], 'both, newest first, read by another instance')
      await a.tags.put(repo, '3.20', entry(3, ['*'], 3000))
      t.same((await b.tags.get(repo, '3.20')).map(e => e.digest), [digest(3), digest(1)], 'the entry of an Accept set is replaced')
      for (let i = 0; i < 10; i++) await a.tags.put(repo, 'many', entry(10 + i, [`type/${i}`], 10 + i))
      const many = await b.tags.get(repo, 'many')
      t.equal(many.length, 8, 'eight at most')
      t.same(many.map(e => e.digest), [19, 18, 17, 16, 15, 14, 13, 12].map(digest), 'the eight newest')
      await a.tags.drop(repo, '3.20', ['*'])
      t.same((await b.tags.get(repo, '3.20')).map(e => e.digest), [digest(1)], 'one Accept set dropped')
      t.same(await b.tags.list(repo), ['3.20', 'many'], 'the repository\'s tags, sorted')
      t.same(await b.tags.list('docker.io/library/other'), [], 'another repository has none')
      t.equal(await a.tags.remove(repo, 'many'), true)
      t.equal(await a.tags.remove(repo, 'many'), false, 'removing a tag that is gone says so')
      t.same(await b.tags.get(repo, 'many'), [])
      t.same(await b.tags.list(repo), ['3.20'])
      t.same(await b.tags.get('docker.io/library', 'alpine'), [], 'a repository and its parent do not share tags')
    })

    await t.test('tags: concurrent writers of one tag keep every Accept set\'s entry', async t => {
      const repo = 'ghcr.io/acme/app'
      const writers = shared ? [a, b] : [a]
      await Promise.all(Array.from({ length: 8 }, (_, i) => writers[i % writers.length]!.tags.put(repo, 'v1', entry(100 + i, [`type/${i}`], 100 + i))))
      t.same((await b.tags.get(repo, 'v1')).map(e => e.digest).sort(), Array.from({ length: 8 }, (_, i) => digest(100 + i)).sort(),
        shared ? 'eight entries written at once by two proxies: none lost' : 'eight entries written at once: none lost')
    })

    await t.test('manifest records: written once, read by anyone; unknown is undefined', async t => {
      t.equal(await a.manifests.get(digest(3)), undefined)
      await a.manifests.put(digest(3), { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 512, subject: digest(4), artifactType: 'application/spdx+json' })
      t.same(await b.manifests.get(digest(3)), { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 512, subject: digest(4), artifactType: 'application/spdx+json' })
      await b.manifests.remove(digest(3))
      t.equal(await b.manifests.get(digest(3)), undefined, 'removed')
    })

    await t.test('links: what a repository holds, when it got it, and nothing for another repository', async t => {
      const repo = 'acme/app'
      const before = Date.now()
      t.equal(await a.links.linked(repo, 'blob', digest(5)), undefined)
      await a.links.link(repo, 'blob', digest(5))
      await a.links.link(repo, 'manifest', digest(6))
      const at = await b.links.linked(repo, 'blob', digest(5))
      t.ok(at !== undefined && at >= before && at <= Date.now(), 'linked, with when, seen by another instance')
      t.equal(await b.links.linked(repo, 'manifest', digest(5)), undefined, 'a blob link is not a manifest link')
      t.equal(await b.links.linked('acme/other', 'blob', digest(5)), undefined, 'another repository does not hold it')
      t.equal(await b.links.linked('acme', 'blob', digest(5)), undefined, 'nor does the parent name')
      t.same((await b.links.list(repo, 'blob')).map(l => l.digest), [digest(5)])
      t.same((await b.links.list(repo, 'manifest')).map(l => l.digest), [digest(6)])
      await a.links.link('acme/app/sub', 'blob', digest(7))
      t.same((await b.links.repositories()).filter(r => r.startsWith('acme')), ['acme/app', 'acme/app/sub'], 'every repository that holds something')
      t.equal(await a.links.unlink(repo, 'blob', digest(5)), true)
      t.equal(await a.links.unlink(repo, 'blob', digest(5)), false, 'unlinking what is not linked says so')
      t.equal(await a.links.linked(repo, 'blob', digest(5)), undefined, 'unlinked')
      t.same(await b.links.list(repo, 'blob'), [])
    })

    await t.test('unlinkIfOlder: a link made again since the cutoff stays (garbage collection against a push)', async t => {
      const repo = 'acme/gc'
      await a.links.link(repo, 'blob', digest(11))
      const cutoff = Date.now() + 1
      await new Promise(resolve => setTimeout(resolve, 5))
      t.equal(await b.links.unlinkIfOlder(repo, 'blob', digest(11), cutoff - 60_000), false, 'a link newer than the cutoff stays')
      t.equal(await b.links.unlinkIfOlder(repo, 'blob', digest(11), cutoff), true, 'a link older than the cutoff goes')
      t.same(await a.links.list(repo, 'blob').then(l => l.map(x => x.digest)), [], 'and is gone from the listing the other instance reads')
      await a.links.link(repo, 'blob', digest(12))
      await a.links.link(repo, 'blob', digest(12)) // linked again: the time is the second one
      t.equal(await b.links.unlinkIfOlder(repo, 'blob', digest(12), Date.now() - 1000), false, 'linked again just now: it stays')
      t.equal(await b.links.unlinkIfOlder(repo, 'blob', digest(13), Date.now()), false, 'nothing to unlink says so')
    })

    await t.test('referrers: per repository and subject', async t => {
      await a.links.addReferrer('acme/app', digest(8), digest(9))
      await a.links.addReferrer('acme/app', digest(8), digest(10))
      t.same(await b.links.referrers('acme/app', digest(8)), [digest(9), digest(10)].sort())
      t.same(await b.links.referrers('acme/other', digest(8)), [], 'per repository')
      await b.links.removeReferrer('acme/app', digest(8), digest(9))
      t.same(await a.links.referrers('acme/app', digest(8)), [digest(10)])
    })

    await t.test('list answers: the last good answer per repository and key', async t => {
      const answer = { contentType: 'application/json', link: '</v2/x/tags/list?last=b&n=2>; rel="next"', body: '{"name":"x","tags":["a","b"]}', fetchedAt: 5 }
      t.equal(await a.lists.get('docker.io/x', 'tags|n=2'), undefined)
      await a.lists.put('docker.io/x', 'tags|n=2', answer)
      t.same(await b.lists.get('docker.io/x', 'tags|n=2'), answer)
      t.equal(await b.lists.get('docker.io/x', 'tags|n=3'), undefined, 'per key')
    })

    await t.test('the event stream: appended in order, read in pages from any id, counted', async t => {
      const events: RegionEvent[] = []
      for (let i = 0; i < 25; i++) {
        events.push(i % 2 === 0
          ? { kind: 'blob', digest: digest(100 + i), size: i, at: i }
          : { kind: 'tag', name: 'docker.io/library/alpine', tag: `v${i}`, digest: digest(100 + i), mediaType: 'application/vnd.oci.image.manifest.v1+json', at: i })
      }
      events.push({ kind: 'tag-deleted', name: 'acme/app', tag: 'old', at: 30 }, { kind: 'manifest-deleted', name: 'acme/app', digest: digest(1), at: 31 })
      for (const e of events) await a.events.append(e)
      const all = await b.events.read('0', 100)
      t.same(all.map(s => s.event), events, 'every event, whole, in order, read by another instance')
      t.equal(new Set(all.map(s => s.id)).size, events.length, 'each with its own id')
      t.equal(await b.events.countAfter('0'), events.length)
      const first = await b.events.read('0', 10)
      const rest = await b.events.read(first[first.length - 1]!.id, 100)
      t.same([...first, ...rest].map(s => s.event), events, 'resumed from the last id read: nothing lost, nothing twice')
      t.equal(await b.events.countAfter(first[first.length - 1]!.id), events.length - 10)
      t.same(await b.events.read(all[all.length - 1]!.id, 10), [], 'nothing after the last')

      // compaction up to the lowest of the peers' cursors: what they passed goes, the rest reads as before
      t.equal(await a.events.compact([all[14]!.id, all[9]!.id]), true, 'compacted')
      t.same((await b.events.read('0', 100)).map(s => s.event), events.slice(10), 'a read from the start begins after the lowest cursor')
      t.equal(await b.events.countAfter('0'), events.length - 10)
      t.same((await b.events.read(all[14]!.id, 100)).map(s => s.event), events.slice(15), 'a peer further on reads on unchanged')
      t.equal(await a.events.compact([all[14]!.id, all[9]!.id]), false, 'nothing more to drop at the same cursors')
      t.equal(await a.events.compact(['0', all[20]!.id]), false, 'a peer that has read nothing holds everything')
      await a.events.append({ kind: 'blob', digest: digest(999), size: 1, at: 40 })
      const after = await b.events.read(all[all.length - 1]!.id, 10)
      t.same(after.map(s => s.event), [{ kind: 'blob', digest: digest(999), size: 1, at: 40 }], 'appends go on after a compaction')
    })

    await t.test('replication cursors: per peer, "0" until set', async t => {
      t.equal(await a.events.cursor('us-east'), '0')
      await a.events.setCursor('us-east', '12345')
      t.equal(await b.events.cursor('us-east'), '12345')
      t.equal(await b.events.cursor('ap-south'), '0', 'per peer')
    })

    await t.test('dead letters: kept per peer with their reason, replaced by id, removed', async t => {
      const event: RegionEvent = { kind: 'manifest', name: 'ghcr.io/acme/app', digest: digest(7), mediaType: 'application/vnd.oci.image.manifest.v1+json', at: 7 }
      t.same(await a.events.deadLetters('us-east'), [])
      await a.events.addDeadLetter('us-east', { id: 'e1', event, error: 'refused: 400', at: 1 })
      await a.events.addDeadLetter('us-east', { id: 'e2', event, error: 'refused: 403', at: 2 })
      await a.events.addDeadLetter('us-east', { id: 'e1', event, error: 'refused again: 400', at: 3 })
      const letters = (await b.events.deadLetters('us-east')).sort((x, y) => x.id.localeCompare(y.id))
      t.same(letters.map(l => [l.id, l.error]), [['e1', 'refused again: 400'], ['e2', 'refused: 403']], 'one per event, the latest reason')
      t.same(letters[0]!.event, event)
      t.same(await b.events.deadLetters('ap-south'), [], 'per peer')
      await b.events.removeDeadLetter('us-east', 'e1')
      t.same((await a.events.deadLetters('us-east')).map(l => l.id), ['e2'])
    })

    await t.test('robots: the list written is the list read', async t => {
      t.same(await a.robots.list(), [])
      const robots: RobotRecord[] = [{ name: 'ci', hash: '$2b$10$' + 'x'.repeat(53), scopes: [{ repositories: ['acme/**'], role: 'writer' }], createdAt: 1, expiresAt: undefined, revokedAt: undefined }]
      await a.robots.replace(robots)
      const read = await b.robots.list()
      t.equal(read.length, 1)
      t.same({ ...read[0], expiresAt: read[0]!.expiresAt ?? undefined, revokedAt: read[0]!.revokedAt ?? undefined }, robots[0])
    })
  })
}

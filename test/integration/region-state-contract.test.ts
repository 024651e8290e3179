// One contract for the region state, run against both implementations: the
// embedded one (files under a folder, what one process uses) and Redis (a
// real redis-server, what a region of proxies shares). Tags, manifest media
// types, list answers, the event stream with ids a reader resumes from,
// replication cursors, dead letters and robots: what one writes, another
// instance on the same backing reads back.
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import { EmbeddedState } from '../../src/store/embedded-state.ts'
import { connectRedis } from '../../src/store/redis.ts'
import { RedisState } from '../../src/store/redis-state.ts'
import type { RegionEvent, RegionState, RobotRecord, TagEntry } from '../../src/store/region-state.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'

const log = pino({ level: 'silent' })
const dir = mkdtempSync(join(tmpdir(), 'ferry-state-contract-'))
let redis: RedisServer
const connections: Redis[] = []

t.before(async () => { redis = await startRedis() })
t.teardown(async () => {
  for (const c of connections) c.disconnect()
  await redis?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** Two instances over one backing store: what a second proxy (or a restart) sees. */
interface Subject { readonly a: RegionState, readonly b: RegionState }

const subjects: Record<string, () => Promise<Subject>> = {
  embedded: async () => {
    const root = join(dir, 'embedded')
    return { a: new EmbeddedState(root), b: new EmbeddedState(root) }
  },
  redis: async () => {
    const open = async (): Promise<RegionState> => {
      const c = connectRedis({ url: redis.url, passwordEnv: undefined }, log)
      connections.push(c)
      if (c.status !== 'ready') await new Promise(resolve => c.once('ready', resolve))
      return new RedisState(c, 'contract:', log)
    }
    return { a: await open(), b: await open() }
  },
}

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`

for (const [name, make] of Object.entries(subjects)) {
  t.test(`${name} region state`, async t => {
    const { a, b } = await make()
    t.teardown(async () => { await a.close(); await b.close() })

    await t.test('tags: the entries written are the entries read, by another instance too; an unknown tag has none', async t => {
      const key = { upstream: 'hub', repo: 'library/alpine', tag: '3.20' }
      const entries: TagEntry[] = [
        { accept: ['application/vnd.oci.image.index.v1+json'], digest: digest(1), mediaType: 'application/vnd.oci.image.index.v1+json', size: 500, fetchedAt: 1000 },
        { accept: ['*'], digest: digest(2), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 400, fetchedAt: 2000 },
      ]
      t.same(await a.getTag(key), [])
      await a.putTag(key, entries)
      t.same(await a.getTag(key), entries)
      t.same(await b.getTag(key), entries, 'another instance reads them')
      await b.putTag(key, entries.slice(1))
      t.same(await b.getTag(key), entries.slice(1), 'replaced whole')
      t.same(await b.getTag({ ...key, tag: '3.21' }), [], 'another tag is untouched')
      t.same(await b.getTag({ ...key, upstream: 'other' }), [], 'as is the same name at another upstream')
    })

    await t.test('manifest media types: written once, read by anyone; unknown is undefined', async t => {
      t.equal(await a.getManifestType(digest(3)), undefined)
      await a.putManifestType(digest(3), 'application/vnd.docker.distribution.manifest.v2+json')
      t.equal(await b.getManifestType(digest(3)), 'application/vnd.docker.distribution.manifest.v2+json')
    })

    await t.test('list answers: the last good answer per key', async t => {
      const answer = { contentType: 'application/json', link: '</v2/x/tags/list?last=b&n=2>; rel="next"', body: '{"name":"x","tags":["a","b"]}', fetchedAt: 5 }
      t.equal(await a.getList('hub', 'x', 'tags|n=2'), undefined)
      await a.putList('hub', 'x', 'tags|n=2', answer)
      t.same(await b.getList('hub', 'x', 'tags|n=2'), answer)
      t.equal(await b.getList('hub', 'x', 'tags|n=3'), undefined, 'per key')
    })

    await t.test('the event stream: appended in order, read in pages from any id, counted', async t => {
      const events: RegionEvent[] = []
      for (let i = 0; i < 25; i++) {
        events.push(i % 2 === 0
          ? { kind: 'blob', digest: digest(100 + i), size: i, at: i }
          : { kind: 'tag', name: 'docker.io/library/alpine', tag: `v${i}`, digest: digest(100 + i), mediaType: 'application/vnd.oci.image.manifest.v1+json', at: i })
      }
      for (const e of events) await a.appendEvent(e)
      const all = await b.readEvents('0', 100)
      t.same(all.map(s => s.event), events, 'every event, whole, in order, read by another instance')
      t.equal(new Set(all.map(s => s.id)).size, 25, 'each with its own id')
      t.equal(await b.countEventsAfter('0'), 25)
      const first = await b.readEvents('0', 10)
      const rest = await b.readEvents(first[first.length - 1]!.id, 100)
      t.same([...first, ...rest].map(s => s.event), events, 'resumed from the last id read: nothing lost, nothing twice')
      t.equal(await b.countEventsAfter(first[first.length - 1]!.id), 15)
      t.same(await b.readEvents(all[all.length - 1]!.id, 10), [], 'nothing after the last')
    })

    await t.test('replication cursors: per peer, "0" until set', async t => {
      t.equal(await a.getCursor('us-east'), '0')
      await a.setCursor('us-east', '12345')
      t.equal(await b.getCursor('us-east'), '12345')
      t.equal(await b.getCursor('ap-south'), '0', 'per peer')
    })

    await t.test('dead letters: kept per peer with their reason, replaced by id, removed', async t => {
      const event: RegionEvent = { kind: 'manifest', name: 'ghcr.io/acme/app', digest: digest(7), mediaType: 'application/vnd.oci.image.manifest.v1+json', at: 7 }
      t.same(await a.deadLetters('us-east'), [])
      await a.addDeadLetter('us-east', { id: 'e1', event, error: 'refused: 400', at: 1 })
      await a.addDeadLetter('us-east', { id: 'e2', event, error: 'refused: 403', at: 2 })
      await a.addDeadLetter('us-east', { id: 'e1', event, error: 'refused again: 400', at: 3 })
      const letters = (await b.deadLetters('us-east')).sort((x, y) => x.id.localeCompare(y.id))
      t.same(letters.map(l => [l.id, l.error]), [['e1', 'refused again: 400'], ['e2', 'refused: 403']], 'one per event, the latest reason')
      t.same(letters[0]!.event, event)
      t.same(await b.deadLetters('ap-south'), [], 'per peer')
      await b.removeDeadLetter('us-east', 'e1')
      t.same((await a.deadLetters('us-east')).map(l => l.id), ['e2'])
    })

    await t.test('robots: the list written is the list read', async t => {
      t.same(await a.robots(), [])
      const robots: RobotRecord[] = [{ name: 'ci', hash: '$2b$10$' + 'x'.repeat(53), scopes: [{ repositories: ['acme/**'], role: 'writer' }], createdAt: 1, expiresAt: undefined, revokedAt: undefined }]
      await a.putRobots(robots)
      const read = await b.robots()
      t.equal(read.length, 1)
      t.same({ ...read[0], expiresAt: read[0]!.expiresAt ?? undefined, revokedAt: read[0]!.revokedAt ?? undefined }, robots[0])
    })
  })
}

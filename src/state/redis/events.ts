// The region's event stream in Redis (an XADD stream, trimmed approximately
// at a million entries and, by the replicator, up to where every peer has
// passed), each peer's cursor, and its dead letters (a hash).
import type { DeadLetter, EventLog, RegionEvent, StoredEvent } from '../region-state.ts'
import { parse, RedisPart } from './base.ts'

/** Events kept in the region's stream for the replicator (trimmed approximately past this). */
const EVENT_STREAM_MAX = 1_000_000

export class RedisEvents extends RedisPart implements EventLog {
  async append (event: RegionEvent): Promise<void> {
    await this.tryWrite(() => this.redis.xadd(`${this.prefix}events`, 'MAXLEN', '~', EVENT_STREAM_MAX, '*', 'e', JSON.stringify(event)))
  }

  async read (after: string, count: number): Promise<StoredEvent[]> {
    const rows = await this.call('read the event stream', () => this.redis.xrange(`${this.prefix}events`, `(${after === '0' ? '0-0' : after}`, '+', 'COUNT', count))
    const out: StoredEvent[] = []
    for (const [id, fields] of rows) {
      const i = fields.indexOf('e')
      const event = i >= 0 ? parse<RegionEvent>(fields[i + 1] ?? null) : undefined
      if (event !== undefined) out.push({ id, event })
    }
    return out
  }

  async countAfter (after: string): Promise<number> {
    // XRANGE with a bound start is O(log n + returned); count in pages to keep replies small
    let n = 0
    let from = after
    for (;;) {
      const rows = await this.call('read the event stream', () => this.redis.xrange(`${this.prefix}events`, `(${from === '0' ? '0-0' : from}`, '+', 'COUNT', 10_000))
      n += rows.length
      if (rows.length < 10_000) return n
      from = rows[rows.length - 1]![0]
    }
  }

  async cursor (peer: string): Promise<string> {
    return await this.call('read a replication cursor', () => this.redis.get(`${this.prefix}replication:${peer}:cursor`)) ?? '0'
  }

  async setCursor (peer: string, id: string): Promise<void> {
    await this.call('write a replication cursor', () => this.redis.set(`${this.prefix}replication:${peer}:cursor`, id))
  }

  async addDeadLetter (peer: string, letter: DeadLetter): Promise<void> {
    await this.call('keep a dead letter', () => this.redis.hset(`${this.prefix}replication:${peer}:dead`, letter.id, JSON.stringify(letter)))
  }

  async deadLetters (peer: string): Promise<DeadLetter[]> {
    const all = await this.call('read the dead letters', () => this.redis.hvals(`${this.prefix}replication:${peer}:dead`))
    return all.map(v => parse<DeadLetter>(v)).filter((d): d is DeadLetter => d !== undefined)
  }

  async compact (cursors: readonly string[]): Promise<boolean> {
    if (cursors.length === 0 || cursors.includes('0')) return false
    const lowest = cursors.reduce((a, b) => compareIds(a, b) <= 0 ? a : b)
    // XTRIM MINID keeps ids >= its argument: the id just after the cursor, so the delivered event goes too
    const [ms = '0', seq = '0'] = lowest.split('-')
    const dropped = await this.call('compact the event stream', () => this.redis.xtrim(`${this.prefix}events`, 'MINID', `${ms}-${Number(seq) + 1}`))
    return dropped > 0
  }

  async removeDeadLetter (peer: string, id: string): Promise<void> {
    await this.call('remove a dead letter', () => this.redis.hdel(`${this.prefix}replication:${peer}:dead`, id))
  }
}

/** Stream ids ("<ms>-<seq>") in order. */
function compareIds (a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am !== bm ? am - bm : as - bs
}

// The embedded region stream (state/events.jsonl): many events appended at
// once, by two writers on the same folder as two workers would, come back
// whole, once each, in each writer's order, with ids a reader resumes from.
import { readFileSync } from 'node:fs'

import { join } from 'node:path'
import t from 'tap'
import { embeddedState } from '../../src/state/embedded/index.ts'
import type { RegionEvent } from '../../src/state/region-state.ts'
import { scratchDir } from '../helpers/procs.ts'

const digest = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`

t.test('500 concurrent appends from two writers: every event once, whole, in its writer\'s order', async t => {
  const root = join(scratchDir('ferry-events-'), 'state')
  const a = embeddedState(root)
  const b = embeddedState(root)
  const appends: Promise<void>[] = []
  for (let i = 0; i < 250; i++) {
    appends.push(a.events.append({ kind: 'blob', digest: digest(i), size: i, at: i }))
    appends.push(b.events.append({ kind: 'blob', digest: digest(1000 + i), size: i, at: 1000 + i }))
  }
  await Promise.all(appends)

  const lines = readFileSync(join(root, 'events.jsonl'), 'utf8').split('\n')
  t.equal(lines.pop(), '', 'the file ends with a whole line')
  t.equal(lines.length, 500)
  const events = lines.map(l => JSON.parse(l) as RegionEvent & { at: number })
  const fromA = events.filter(e => e.at < 1000).map(e => e.at)
  const fromB = events.filter(e => e.at >= 1000).map(e => e.at)
  t.same(fromA, Array.from({ length: 250 }, (_, i) => i), 'writer A\'s events, each once, in order')
  t.same(fromB, Array.from({ length: 250 }, (_, i) => 1000 + i), 'writer B\'s events, each once, in order')

  const reader = embeddedState(root)
  const first = await reader.events.read('0', 100)
  t.equal(first.length, 100)
  const rest = await reader.events.read(first.at(-1)!.id, 1000)
  t.equal(rest.length, 400, 'resuming from the 100th id gives the other 400')
  t.equal(await reader.events.countAfter('0'), 500)

  await a.close()
  await b.close()
  const c = embeddedState(root)
  await c.events.append({ kind: 'blob', digest: digest(9999), size: 1, at: 9999 })
  t.equal(await reader.events.countAfter('0'), 501, 'a writer started after the others closed appends after them')
  await c.close()
})

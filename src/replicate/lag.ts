// How far a peer region is behind: the events after its cursor, the blob
// bytes among them, the oldest one's age, and its dead letters.
import type { RegionState } from '../state/region-state.ts'

export interface Lag { events: number, bytes: number, oldestMs: number | undefined, deadLetters: number, cursor: string }

export async function lagOf (state: RegionState, peer: string): Promise<Lag> {
  const cursor = await state.events.cursor(peer)
  let events = 0; let bytes = 0; let oldest: number | undefined
  for (let after = cursor; ;) {
    const page = await state.events.read(after, 1000)
    for (const { event } of page) {
      events++
      if (event.kind === 'blob') bytes += event.size
      oldest ??= event.at
    }
    if (page.length < 1000) break
    after = page[page.length - 1]!.id
  }
  const deadLetters = (await state.events.deadLetters(peer)).length
  return { events, bytes, oldestMs: oldest === undefined ? undefined : Date.now() - oldest, deadLetters, cursor }
}

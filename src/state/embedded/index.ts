// The region state of one machine, with no service: files under <data>/state.
// `shared`: several processes (workers) use the folder at once.
import type { RegionState } from '../region-state.ts'
import { EmbeddedEvents } from './events.ts'
import { StateFiles } from './files.ts'
import { EmbeddedLinks } from './links.ts'
import { EmbeddedLists } from './lists.ts'
import { EmbeddedManifests } from './manifests.ts'
import { EmbeddedRobots } from './robots.ts'
import { EmbeddedTags } from './tags.ts'

export function embeddedState (root: string, shared = false): RegionState {
  const files = new StateFiles()
  const events = new EmbeddedEvents(root, files)
  return {
    tags: new EmbeddedTags(root, files, shared),
    manifests: new EmbeddedManifests(root, files),
    links: new EmbeddedLinks(root, files),
    lists: new EmbeddedLists(root, files),
    events,
    robots: new EmbeddedRobots(root, files),
    close: () => events.close(),
  }
}

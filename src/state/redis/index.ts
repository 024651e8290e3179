// The region state every proxy of a region shares, in Redis.
import type { Redis } from 'ioredis'
import type { Logger } from '../../observe/logger.ts'
import type { RegionState } from '../region-state.ts'
import { RedisEvents } from './events.ts'
import { RedisLinks } from './links.ts'
import { RedisLists } from './lists.ts'
import { RedisManifests } from './manifests.ts'
import { RedisRobots } from './robots.ts'
import { RedisTags } from './tags.ts'

export function redisState (redis: Redis, prefix: string, log: Logger): RegionState {
  return {
    tags: new RedisTags(redis, prefix, log),
    manifests: new RedisManifests(redis, prefix, log),
    links: new RedisLinks(redis, prefix, log),
    lists: new RedisLists(redis, prefix, log),
    events: new RedisEvents(redis, prefix, log),
    robots: new RedisRobots(redis, prefix, log),
    close: async () => {},
  }
}

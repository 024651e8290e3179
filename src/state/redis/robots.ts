// Robot accounts in Redis: one key holding the list.
import type { RobotRecord, Robots } from '../region-state.ts'
import { parse, RedisPart } from './base.ts'

export class RedisRobots extends RedisPart implements Robots {
  async list (): Promise<RobotRecord[]> {
    return parse<RobotRecord[]>(await this.call('read the robots', () => this.redis.get(`${this.prefix}robots`))) ?? []
  }

  async replace (robots: readonly RobotRecord[]): Promise<void> {
    await this.call('write the robots', () => this.redis.set(`${this.prefix}robots`, JSON.stringify(robots)))
  }
}

// Robot accounts as one file, <root>/robots.json.
import { join } from 'node:path'
import type { RobotRecord, Robots } from '../region-state.ts'
import type { StateFiles } from './files.ts'

export class EmbeddedRobots implements Robots {
  private readonly path: string
  private readonly files: StateFiles

  constructor (root: string, files: StateFiles) {
    this.path = join(root, 'robots.json')
    this.files = files
  }

  async list (): Promise<RobotRecord[]> { return await this.files.readJson<RobotRecord[]>(this.path) ?? [] }
  async replace (robots: readonly RobotRecord[]): Promise<void> { await this.files.write(this.path, JSON.stringify(robots)) }
}

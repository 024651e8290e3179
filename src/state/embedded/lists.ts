// The last good list answers as files: <root>/lists/<repository>/_lists/<hash of the key>.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { ListAnswer, ListAnswers } from '../region-state.ts'
import type { StateFiles } from './files.ts'

export class EmbeddedLists implements ListAnswers {
  private readonly root: string
  private readonly files: StateFiles

  constructor (root: string, files: StateFiles) {
    this.root = join(root, 'lists')
    this.files = files
  }

  private path (repo: string, key: string): string {
    return join(this.root, repo, '_lists', createHash('sha256').update(key).digest('hex').slice(0, 32))
  }

  async get (repo: string, key: string): Promise<ListAnswer | undefined> {
    return await this.files.readJson<ListAnswer>(this.path(repo, key))
  }

  async put (repo: string, key: string, answer: ListAnswer): Promise<void> {
    await this.files.write(this.path(repo, key), JSON.stringify(answer))
  }
}

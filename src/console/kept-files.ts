// What one process keeps for the console (traffic, pull counts): a JSON file
// per process in one folder, rewritten whole (a temporary file, then a
// rename, one write at a time), and read back from every process's file.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export class KeptFiles {
  private readonly dir: string
  private readonly prefix: string
  private readonly own: string
  private writing: Promise<void> | undefined

  /** Files `<prefix>-<processId>.json` in `dir`; this process writes its own. */
  constructor (dir: string, prefix: string, processId: string) {
    this.dir = dir
    this.prefix = prefix
    this.own = join(dir, `${prefix}-${processId}.json`)
  }

  async write (value: unknown): Promise<void> {
    while (this.writing !== undefined) await this.writing
    this.writing = (async () => {
      await mkdir(this.dir, { recursive: true })
      const tmp = `${this.own}.tmp`
      await writeFile(tmp, JSON.stringify(value))
      await rename(tmp, this.own)
    })().finally(() => { this.writing = undefined })
    await this.writing
  }

  /** This process's file as kept (undefined: none, or torn). */
  async readOwn (): Promise<unknown> {
    return await readJson(this.own)
  }

  /** Every process's file. */
  async readAll (): Promise<unknown[]> {
    const out: unknown[] = []
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (name.startsWith(`${this.prefix}-`) && name.endsWith('.json')) out.push(await readJson(join(this.dir, name)))
    }
    return out
  }
}

async function readJson (file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown
  } catch {
    return undefined
  }
}

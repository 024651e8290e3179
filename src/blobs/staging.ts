import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../observe/logger.ts'

/**
 * Remove the staging files a killed process left behind: a blob enters the
 * store only by rename after it verified, so none of them was ever committed.
 * Run once per data folder before anything fills (the primary's job when
 * there are workers).
 */
export async function cleanStaging (dir: string, log: Logger): Promise<void> {
  await mkdir(dir, { recursive: true })
  const stray = await readdir(dir)
  await Promise.all(stray.map(f => rm(join(dir, f), { force: true, recursive: true })))
  if (stray.length > 0) log.info({ removed: stray.length }, 'removed stray staging files')
}

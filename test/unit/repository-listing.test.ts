// The catalog's and the console's list of repositories over the embedded
// state, which walks a folder per repository: a walk is shared and kept, so a
// flood of listings costs no walks, and yet a repository this process adds
// is listed at once, and one another process adds within the keeping time.
import { join } from 'node:path'
import t from 'tap'
import { RepositoryListing } from '../../src/content/repository-listing.ts'
import { embeddedState } from '../../src/state/embedded/index.ts'
import { scratchDir } from '../helpers/procs.ts'

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`

t.test('a kept listing answers repeated callers; a repository this process adds is listed at once', async t => {
  const root = join(scratchDir('ferry-listing-'), 'state')
  const state = embeddedState(root)
  t.teardown(() => state.close())
  for (let i = 0; i < 30; i++) await state.links.link(`team/app-${i}`, 'manifest', digest(i))
  let walks = 0
  const listing = new RepositoryListing(state.links, () => { walks++ })
  const first = await Promise.all(Array.from({ length: 20 }, async () => await listing.all()))
  t.equal(walks, 1, '20 callers at once: one walk')
  t.equal(first[0]!.length, 30)
  t.same(first[0], [...first[0]!].sort(), 'sorted')
  for (let i = 0; i < 100; i++) await listing.all()
  t.equal(walks, 1, '100 more callers: the kept walk, none of their own')

  await state.links.link('team/new', 'blob', digest(99))
  t.ok((await listing.all()).includes('team/new'), 'a repository linked by this process: listed at once')
  t.equal(walks, 2, 'by walking again')
  await state.links.link('team/new', 'blob', digest(100))
  await state.links.link('team/app-3', 'manifest', digest(101))
  await listing.all()
  t.equal(walks, 2, 'links into repositories it holds already: the kept walk stands')
})

t.test('a repository another process adds is listed within the keeping time', async t => {
  const root = join(scratchDir('ferry-listing-'), 'state')
  const ours = embeddedState(root)
  const theirs = embeddedState(root) // another worker on the same data folder
  t.teardown(async () => { await ours.close(); await theirs.close() })
  await ours.links.link('team/a', 'manifest', digest(1))
  const listing = new RepositoryListing(ours.links)
  t.same(await listing.all(), ['team/a'])
  await theirs.links.link('team/b', 'manifest', digest(2))
  const started = Date.now()
  while (!(await listing.all()).includes('team/b')) {
    if (Date.now() - started > 5_000) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.same(await listing.all(), ['team/a', 'team/b'], 'listed once the kept walk is out of time (a second for a walk this short)')
})

// Pages of the catalog and of tags lists: the catalog pages its kept, sorted
// list by binary search instead of copying and sorting it per request; both
// must give the pages the distribution spec describes.
import t from 'tap'
import { page, pageOfSorted } from '../../src/oci/paging.ts'

t.test('n items after last, and a Link while more follow', async t => {
  const all = ['a/1', 'a/2', 'b', 'b/c', 'c']
  t.same(pageOfSorted(all, {}, '/v2/_catalog'), { items: all, link: undefined }, 'no n: everything')
  t.same(pageOfSorted(all, { n: 2 }, '/v2/_catalog'), { items: ['a/1', 'a/2'], link: '</v2/_catalog?n=2&last=a%2F2>; rel="next"' })
  t.same(pageOfSorted(all, { n: 2, last: 'a/2' }, '/v2/_catalog').items, ['b', 'b/c'])
  t.same(pageOfSorted(all, { n: 2, last: 'b/c' }, '/v2/_catalog'), { items: ['c'], link: undefined }, 'the last page has no Link')
  t.same(pageOfSorted(all, { n: 3, last: 'b/a' }, '/v2/_catalog').items, ['b/c', 'c'], 'last need not be in the list')
  t.same(pageOfSorted(all, { last: 'zzz' }, '/v2/_catalog'), { items: [], link: undefined }, 'after the end: nothing')
  t.same(pageOfSorted(all, { n: 0 }, '/v2/_catalog'), { items: [], link: undefined }, 'n=0: nothing, no Link')
  t.same(pageOfSorted(all, { n: 5 }, '/v2/_catalog').link, undefined, 'exactly the rest: no Link')
})

t.test('the same pages as copying, sorting and filtering, over random lists and queries', async t => {
  let seed = 7
  const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  const word = (): string => Array.from({ length: 1 + random(4) }, () => 'ab/-_.Z'[random(7)]).join('')
  let differ = 0
  for (let i = 0; i < 2000; i++) {
    const all = [...new Set(Array.from({ length: random(30) }, word))]
    const query = { n: random(3) === 0 ? undefined : random(12), last: random(2) === 0 ? undefined : word() }
    const sorted = [...all].sort()
    if (JSON.stringify(pageOfSorted(sorted, query, '/p')) !== JSON.stringify(page(all, query, '/p'))) differ++
    // and page() itself against the plain definition
    const rest = sorted.filter(x => query.last === undefined || x > query.last)
    if (JSON.stringify(page(all, query, '/p').items) !== JSON.stringify(query.n === undefined ? rest : rest.slice(0, query.n))) differ++
  }
  t.equal(differ, 0, '2,000 random lists and queries')
})

import { describe, expect, it } from 'vitest'
import { parseLabel, uniqueLabels } from '../../../src/format/labels.js'

describe('names', () => {
  it('parses --label NAME=PATH at the first =, and refuses what would break lines', () => {
    expect(parseLabel('web=/var/log/nginx/access.log')).toEqual({
      name: 'web',
      path: '/var/log/nginx/access.log',
    })
    expect(parseLabel('a=b=c')).toEqual({ name: 'a', path: 'b=c' })
    expect(() => parseLabel('web')).toThrow(/--label.*NAME=PATH.*`web`/)
    expect(() => parseLabel('=x')).toThrow(/NAME=PATH/)
    expect(() => parseLabel('web=')).toThrow(/NAME=PATH/)
    expect(() => parseLabel('we\nb=x')).toThrow(/without newlines/)
  })

  it('labels inputs by base name, with parent directories where base names collide', () => {
    expect(uniqueLabels(['/var/log/a.log', '/var/log/b.log'])).toEqual(['a.log', 'b.log'])
    expect(uniqueLabels(['/srv/web/app.log', '/srv/db/app.log', '/x/y.log'])).toEqual([
      'web/app.log',
      'db/app.log',
      'y.log',
    ])
    expect(uniqueLabels(['/a/x/app.log', '/b/x/app.log'])).toEqual(['a/x/app.log', 'b/x/app.log'])
    expect(uniqueLabels(['/l/app.log', '/l/app.log'])).toEqual(['l/app.log', 'l/app.log#2'])
  })
})

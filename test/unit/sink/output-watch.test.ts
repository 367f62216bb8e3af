/**
 * The watch's decision from tick to tick (OutputWatch), which both writers follow: a change is
 * acted on at a later tick than the one that saw it, a rotation only after its grace, and while
 * writing is held every tick tries again without a second warning.
 */
import { describe, expect, it } from 'vitest'
import { OutputWatch, ROTATION_GRACE_MS } from '../../../src/sink/output-watch.js'

const path = '/var/log/all.log'

describe('OutputWatch', () => {
  it('nothing changed and nothing held: nothing to do', () => {
    expect(new OutputWatch().due(null, false, path, 0)).toBe(false)
  })

  it('a deletion is acted on at the second tick that sees it, with its warning', () => {
    const watch = new OutputWatch()
    expect(watch.due({ kind: 'deleted' }, false, path, 0)).toBe(false)
    const due = watch.due({ kind: 'deleted' }, false, path, 1)
    expect(due).toEqual({ warning: expect.stringMatching(/was deleted while open/) })
  })

  it('a rotation waits for its SIGHUP for ROTATION_GRACE_MS', () => {
    const watch = new OutputWatch()
    expect(watch.due({ kind: 'moved' }, false, path, 0)).toBe(false)
    expect(watch.due({ kind: 'moved' }, false, path, ROTATION_GRACE_MS - 1)).toBe(false)
    const due = watch.due({ kind: 'moved' }, false, path, ROTATION_GRACE_MS)
    expect(due).toEqual({ warning: expect.stringMatching(/was moved away/) })
  })

  it('a change over by the next tick is forgotten', () => {
    const watch = new OutputWatch()
    expect(watch.due({ kind: 'deleted' }, false, path, 0)).toBe(false)
    expect(watch.due(null, false, path, 1)).toBe(false)
    expect(watch.due({ kind: 'deleted' }, false, path, 2)).toBe(false)
  })

  it('while writing is held, every tick tries again, without a warning', () => {
    const watch = new OutputWatch()
    expect(watch.due(null, true, path, 0)).toEqual({ warning: null })
    expect(watch.due({ kind: 'deleted' }, true, path, 1)).toEqual({ warning: null })
  })
})

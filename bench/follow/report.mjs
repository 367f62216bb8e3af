// @ts-check
/**
 * Figures beside the best peer: for a column where lower is better (seconds, CPU, RSS) or
 * higher is better (lines/s, MiB/s), the best value among the peer rows that did the case
 * correctly, and each logmerge figure as a ratio to it ("2.40 s (12x)"). A peer that lost or
 * duplicated lines, or could not run, is no yardstick.
 */

import { fmt } from '../lib.mjs'

/**
 * @typedef {object} Row
 * @property {string} subject
 * @property {'logmerge' | 'peer'} kind
 * @property {boolean} ok          did the case completely and correctly
 */

/**
 * @template {Row} R
 * @param {R[]} rows  of one case
 * @param {(r: R) => number | null | undefined} value
 * @param {'low' | 'high'} better
 * @returns {{ value: number, subject: string } | null}
 */
export function bestPeer(rows, value, better) {
  /** @type {{ value: number, subject: string } | null} */
  let best = null
  for (const r of rows) {
    const v = value(r)
    if (r.kind !== 'peer' || !r.ok || v === null || v === undefined || !Number.isFinite(v)) continue
    if (best === null || (better === 'low' ? v < best.value : v > best.value)) {
      best = { value: v, subject: r.subject }
    }
  }
  return best
}

/**
 * A table cell: the value, and for logmerge rows its ratio to the best peer.
 * @param {number | null | undefined} v
 * @param {{ value: number, subject: string } | null} best
 * @param {'logmerge' | 'peer'} kind
 * @param {number} digits
 * @param {string} [unit]
 */
export function cell(v, best, kind, digits, unit = '') {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a'
  const text = `${fmt(v, digits)}${unit}`
  if (kind !== 'logmerge' || best === null) return text
  if (best.value === 0) return `${text} (peer 0)`
  const r = v / best.value
  return `${text} (${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x)`
}

/** How to read the ratios; said once, above the tables. */
export const RATIO_NOTE =
  'Ratios (x) in logmerge rows: logmerge / the best peer that did the case correctly, named under each table (times, CPU, memory: above 1 is worse; rates: below 1 is worse).'

/**
 * The footnote naming each column's best peer.
 * @param {Array<[string, { value: number, subject: string } | null, number, string?]>} cols
 *   [column name, best, digits, unit]
 */
export function bestNote(cols) {
  const parts = cols.map(([name, b, digits, unit]) =>
    b === null
      ? `${name}: no peer did it correctly`
      : `${name}: ${b.subject} ${fmt(b.value, digits)}${unit ?? ''}`,
  )
  return `Best peer: ${parts.join('; ')}.`
}

/** @param {string} s @returns {string} a short single-line excerpt of stderr */
export function excerpt(s) {
  const t = s.trim().replace(/\s+/g, ' ')
  return t.length > 160 ? `${t.slice(0, 160)}...` : t
}

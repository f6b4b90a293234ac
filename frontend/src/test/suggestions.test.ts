import { describe, expect, it } from 'vitest'
import { SUGGESTION_GROUPS, SUGGESTIONS, loadRecent, moveHighlight, rememberCommand, visibleItems } from '../lib/suggestions'

describe('suggestions', () => {
  it('offers at least 30 distinct suggestions across the seed categories', () => {
    expect(new Set(SUGGESTIONS).size).toBe(SUGGESTIONS.length)
    expect(SUGGESTIONS.length).toBeGreaterThanOrEqual(30)
    const categories = SUGGESTION_GROUPS.map((g) => g.category)
    for (const c of ['Basic deployments', 'Nemotron', 'With a budget', 'Use cases', 'Environments', 'Instances', 'Other phrasings']) {
      expect(categories).toContain(c)
    }
  })

  it('filters by every typed word, in any order and case, and shows at most 12', () => {
    const items = visibleItems('PROD 8b', [])
    expect(items.length).toBeGreaterThan(0)
    for (const item of items) {
      expect(item.text.toLowerCase()).toContain('prod')
      expect(item.text.toLowerCase()).toContain('8b')
    }
    expect(visibleItems('', []).length).toBe(12)
    expect(visibleItems('deploy', []).length).toBe(12)
    expect(visibleItems('no such words at all', [])).toEqual([])
  })

  it('puts recent commands first, marked, without repeating them as suggestions', () => {
    const recent = ['deploy llama-3.1 8B for chatbot-x', 'deploy my-own-model for z']
    const items = visibleItems('', recent)
    expect(items.slice(0, 2)).toEqual([
      { text: recent[0], recent: true },
      { text: recent[1], recent: true },
    ])
    expect(items.filter((i) => i.text === recent[0])).toHaveLength(1)
    expect(visibleItems('my-own', recent)).toEqual([{ text: 'deploy my-own-model for z', recent: true }])
  })
})

describe('recent commands', () => {
  it('keeps the last five, most recent first, without duplicates, across reloads', () => {
    let recent: string[] = []
    for (const c of ['a', 'b', 'c', 'd', 'e', 'f']) recent = rememberCommand(c, recent)
    expect(recent).toEqual(['f', 'e', 'd', 'c', 'b'])
    recent = rememberCommand('  d ', recent)
    expect(recent).toEqual(['d', 'f', 'e', 'c', 'b'])
    expect(loadRecent()).toEqual(['d', 'f', 'e', 'c', 'b'])
  })

  it('ignores a corrupted store instead of failing', () => {
    localStorage.setItem('recentCommands', '{not json')
    expect(loadRecent()).toEqual([])
    localStorage.setItem('recentCommands', JSON.stringify(['ok', 3, null]))
    expect(loadRecent()).toEqual(['ok'])
  })
})

describe('keyboard highlight', () => {
  it('moves within the list and stops at the ends', () => {
    expect(moveHighlight(-1, 'ArrowDown', 3)).toBe(0)
    expect(moveHighlight(2, 'ArrowDown', 3)).toBe(2)
    expect(moveHighlight(0, 'ArrowUp', 3)).toBe(-1)
    expect(moveHighlight(-1, 'ArrowUp', 3)).toBe(-1)
    expect(moveHighlight(1, 'ArrowDown', 0)).toBe(-1)
  })
})

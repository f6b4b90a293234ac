// Command suggestions for the command bar, and the pure logic behind the dropdown
// (filtering, recent commands, keyboard movement), kept apart from React so it is tested alone.

export interface SuggestionGroup {
  category: string
  commands: string[]
}

export const SUGGESTION_GROUPS: SuggestionGroup[] = [
  {
    category: 'Basic deployments',
    commands: [
      'deploy llama-3.1 8B for chatbot-x',
      'deploy llama-3.1 8B for customer-support',
      'deploy mistral 7B for summarizer',
      'deploy qwen2.5 7B for search-assist',
      'deploy gemma-2 9B for faq-bot',
      'deploy phi-3.5 mini for edge-demo',
    ],
  },
  {
    category: 'Nemotron',
    commands: [
      'deploy nemotron nano 8B for chatbot-x',
      'deploy nemotron nano 8B for support-triage',
      'deploy nemotron nano 8B for testing',
    ],
  },
  {
    category: 'With a budget',
    commands: [
      'deploy llama-3.1 8B for chatbot-x with budget $20/hour',
      'deploy llama-3.1 8B for chatbot-x with budget $15 per hour',
      'deploy mistral 7B for summarizer with budget $5/hour',
      'deploy llama-3.1 70B for analyst-bot with budget $40/hour',
    ],
  },
  {
    category: 'Use cases',
    commands: [
      'deploy llama-3.1 8B for recommendation-engine',
      'deploy llama-3.1 8B for document-qa',
      'deploy mistral 7B for content-generation',
      'deploy qwen2.5 7B for code-assistant',
      'deploy llama-3.1 8B for email-summarization',
      'deploy nemotron nano 8B for sentiment-analysis',
    ],
  },
  {
    category: 'Environments',
    commands: [
      'deploy llama-3.1 8B for chatbot-x in prod',
      'deploy llama-3.1 8B for chatbot-x in staging',
      'deploy mistral 7B for summarizer in dev',
    ],
  },
  {
    category: 'Instances',
    commands: [
      'deploy llama-3.1 8B for chatbot-x with 2 instances',
      'deploy llama-3.1 8B for chatbot-x with 3 instances in prod',
      'deploy llama-3.1 8B for chatbot-x on ml.g5.2xlarge',
      'deploy llama-3.1 8B for chatbot-x with a single instance',
    ],
  },
  {
    category: 'Other phrasings',
    commands: [
      'set up llama-3.1 8B for chatbot-x',
      'launch a llama-3.1 8B endpoint for chatbot-x',
      'provision mistral 7B for summarizer',
      'spin up gemma-2 9B for faq-bot',
    ],
  },
  {
    category: 'Lifecycle',
    commands: ['pause chatbot-x-staging', 'restart chatbot-x-staging', 'scale chatbot-x-staging to 2 instances'],
  },
]

export const SUGGESTIONS: string[] = SUGGESTION_GROUPS.flatMap((g) => g.commands)

export const RECENT_KEY = 'recentCommands'
export const RECENT_LIMIT = 5
export const SHOWN_LIMIT = 12

export interface Item {
  text: string
  recent: boolean
}

/** What the dropdown shows: recent commands first, then suggestions; every word typed must
 * appear (in any order, case-insensitive), so "8b prod" finds "deploy llama-3.1 8B ... in prod". */
export function visibleItems(input: string, recent: string[], limit = SHOWN_LIMIT): Item[] {
  const words = input.toLowerCase().split(/\s+/).filter(Boolean)
  const matches = (text: string) => words.every((w) => text.toLowerCase().includes(w))
  const seen = new Set<string>()
  const items: Item[] = []
  for (const text of recent) {
    if (!seen.has(text) && matches(text)) {
      seen.add(text)
      items.push({ text, recent: true })
    }
  }
  for (const text of SUGGESTIONS) {
    if (!seen.has(text) && matches(text)) {
      seen.add(text)
      items.push({ text, recent: false })
    }
  }
  return items.slice(0, limit)
}

export function loadRecent(storage: Storage = localStorage): string[] {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(RECENT_KEY) ?? '[]')
    return Array.isArray(parsed) ? parsed.filter((c): c is string => typeof c === 'string').slice(0, RECENT_LIMIT) : []
  } catch {
    return []
  }
}

/** Most recent first, no duplicates, at most five; stored for the next visit. */
export function rememberCommand(command: string, recent: string[], storage: Storage = localStorage): string[] {
  const text = command.trim()
  const next = [text, ...recent.filter((c) => c !== text)].slice(0, RECENT_LIMIT)
  storage.setItem(RECENT_KEY, JSON.stringify(next))
  return next
}

/** Arrow keys move the highlight and stop at the ends; -1 means "nothing highlighted". */
export function moveHighlight(current: number, key: 'ArrowDown' | 'ArrowUp', count: number): number {
  if (count === 0) return -1
  if (key === 'ArrowDown') return Math.min(current + 1, count - 1)
  return Math.max(current - 1, -1)
}

// Every TanStack Query key the dashboard uses, in one place: a refresh names what it refreshes
// through these, so a query and its invalidation cannot drift apart.
export const keys = {
  me: (apiKey: string | null) => ['me', apiKey] as const,
  ready: ['ready'] as const,
  deployments: ['deployments'] as const,
  approvals: ['approvals'] as const,
  budgets: ['budgets'] as const,
  schedules: ['schedules'] as const,
  planSchedule: (id: string) => ['plan', id, 'schedule'] as const,
  metrics: ['metrics'] as const,
  metric: (name: 'active' | 'pending' | 'cost') => ['metrics', name] as const,
  plan: (id: string) => ['plan', id] as const,
  planHistory: (id: string) => ['plan', id, 'history'] as const,
  planCost: (id: string) => ['plan', id, 'cost'] as const,
}

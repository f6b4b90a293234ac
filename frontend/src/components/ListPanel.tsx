import type { UseQueryResult } from '@tanstack/react-query'
import type { ReactNode } from 'react'

/** A dashboard panel over one list query: a titled card, the query's error said, hidden when the
 * list is empty (budgets, schedules). */
export function ListPanel<T>({ id, title, icon, what, query, children }: { id: string; title: string; icon: ReactNode; what: string; query: UseQueryResult<T[]>; children: (items: T[]) => ReactNode }) {
  const items = query.data ?? []
  if (query.isSuccess && items.length === 0) return null
  return (
    <section aria-labelledby={`${id}-title`} data-testid={id} className="rounded-xl border border-gray-200 bg-white shadow-sm dark:border-gray-800 dark:bg-gray-900">
      <div className="flex items-center gap-2 border-b border-gray-200 px-5 py-3 dark:border-gray-800">
        {icon}
        <h2 id={`${id}-title`} className="font-semibold">{title}</h2>
      </div>
      {query.isError && <p role="alert" className="px-5 py-3 text-sm text-red-600">Could not load {what}: {(query.error as Error).message}</p>}
      <ul className="divide-y divide-gray-100 dark:divide-gray-800">{children(items)}</ul>
    </section>
  )
}

import { useQuery } from '@tanstack/react-query'
import { Wallet } from 'lucide-react'
import clsx from 'clsx'
import type { BudgetView } from '../lib/api'
import { useSession } from '../lib/context'
import { usd } from '../lib/format'
import { keys } from '../lib/keys'
import { ListPanel } from './ListPanel'

/** Monthly budgets per env and app: spend so far, the month-end forecast at today's rate, and the
 * thresholds already past (what the guardian did about them: notify, block, pause). */
export function BudgetsPanel({ live }: { live: boolean }) {
  const { api } = useSession()
  const query = useQuery({ queryKey: keys.budgets, queryFn: api.budgets, refetchInterval: live ? 60_000 : 15_000 })
  return (
    <ListPanel id="budgets" title="Budgets this month" what="budgets" icon={<Wallet className="h-4 w-4 text-emerald-500" aria-hidden />} query={query}>
      {(budgets) => budgets.map((b) => <BudgetRow key={b.scope} budget={b} />)}
    </ListPanel>
  )
}

export function BudgetRow({ budget: b }: { budget: BudgetView }) {
  const share = Math.min(100, (b.spend_usd / b.monthly_usd) * 100)
  const forecast = Math.min(100, (b.forecast_usd / b.monthly_usd) * 100)
  const worst = b.crossed.reduce<string | null>((acc, t) => (t.action === 'pause' ? 'pause' : t.action === 'block' && acc !== 'pause' ? 'block' : acc ?? t.action), null)
  return (
    <li className="px-5 py-3 text-sm" data-scope={b.scope}>
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <span className="font-mono">{b.scope}</span>
        <span>
          <strong data-testid="budget-spend">{usd(b.spend_usd)}</strong> of {usd(b.monthly_usd)} · forecast{' '}
          <span data-testid="budget-forecast">{usd(b.forecast_usd)}</span>
        </span>
      </div>
      <div className="mt-2 h-2 w-full overflow-hidden rounded bg-gray-100 dark:bg-gray-800" aria-hidden>
        <div className="h-2 bg-emerald-200 dark:bg-emerald-900" style={{ width: `${forecast}%` }}>
          <div className={clsx('h-2', share >= 100 ? 'bg-red-500' : share >= 80 ? 'bg-yellow-500' : 'bg-emerald-500')} style={{ width: `${forecast ? (share / forecast) * 100 : 0}%` }} />
        </div>
      </div>
      <p className="mt-1 text-xs text-gray-500" data-testid="budget-basis" title={b.basis}>
        {b.billed_usd != null ? `metered ${usd(b.metered_usd)} · billed ${usd(b.billed_usd)} by AWS (Cost Explorer lags up to 24 h)` : `metered from the audit log`}
      </p>
      {b.crossed.length > 0 && (
        <p data-testid="budget-crossed" className={clsx('mt-1', worst === 'notify' ? 'text-yellow-700 dark:text-yellow-400' : 'text-red-700 dark:text-red-400')}>
          Past {b.crossed.map((t) => `${t.percent}% (${t.basis}, ${t.action})`).join(', ')}
        </p>
      )}
    </li>
  )
}

import { useQuery } from '@tanstack/react-query'
import { Activity, Clock, DollarSign, Minus, TrendingDown, TrendingUp } from 'lucide-react'
import type { ReactNode } from 'react'
import { useSession } from '../lib/context'
import { usd } from '../lib/format'
import { keys } from '../lib/keys'

function Card({ label, value, icon, foot, testid }: { label: string; value: ReactNode; icon: ReactNode; foot?: ReactNode; testid: string }) {
  return (
    <section aria-label={label} data-testid={testid} className="rounded-xl border border-gray-200 bg-white p-5 shadow-sm dark:border-gray-800 dark:bg-gray-900">
      <div className="flex items-center justify-between">
        <h3 className="text-sm font-medium text-gray-500 dark:text-gray-400">{label}</h3>
        {icon}
      </div>
      <p className="mt-2 text-3xl font-semibold" data-testid={`${testid}-value`}>
        {value}
      </p>
      {foot && <div className="mt-1 text-xs text-gray-500 dark:text-gray-400">{foot}</div>}
    </section>
  )
}

export function KPICards() {
  const { api } = useSession()
  // The seed's cadence: counts every 60 s, costs every 5 min; live events refresh them sooner.
  const active = useQuery({ queryKey: keys.metric('active'), queryFn: api.active, refetchInterval: 60_000 })
  const pending = useQuery({ queryKey: keys.metric('pending'), queryFn: api.pending, refetchInterval: 60_000 })
  const cost = useQuery({ queryKey: keys.metric('cost'), queryFn: api.monthly, refetchInterval: 300_000 })
  const Trend = !cost.data || cost.data.percent_change === 0 ? Minus : cost.data.trend === 'up' ? TrendingUp : cost.data?.trend === 'down' ? TrendingDown : Minus
  return (
    <div className="grid grid-cols-1 gap-4 md:grid-cols-3">
      <Card testid="kpi-active" label="Active deployments" value={active.data?.count ?? (active.isError ? '—' : '…')} icon={<Activity className="h-5 w-5 text-blue-500" aria-hidden />} foot="deployed or deploying" />
      <Card testid="kpi-pending" label="Pending approvals" value={pending.data?.count ?? (pending.isError ? '—' : '…')} icon={<Clock className="h-5 w-5 text-yellow-500" aria-hidden />} foot="production plans waiting for a person" />
      <Card
        testid="kpi-cost"
        label="Monthly GPU spend"
        value={cost.data ? usd(cost.data.amount) : cost.isError ? '—' : '…'}
        icon={<DollarSign className="h-5 w-5 text-green-500" aria-hidden />}
        foot={
          cost.data && (
            <span className="flex items-center gap-1" title={cost.data.basis}>
              <Trend className="h-3.5 w-3.5" aria-hidden />
              {cost.data.percent_change >= 0 ? '+' : ''}
              {cost.data.percent_change.toFixed(1)}% vs last month{cost.data.estimated ? ' · estimated' : ''}
            </span>
          )
        }
      />
    </div>
  )
}

import { useQuery } from '@tanstack/react-query'
import { Clock } from 'lucide-react'
import type { ScheduleView } from '../lib/api'
import { useSession } from '../lib/context'
import { when } from '../lib/format'
import { keys } from '../lib/keys'
import { ListPanel } from './ListPanel'

/** What a schedule and an idle rule say, in one line ("mon-fri 08:00-18:00 UTC · idle pause 120 min"). */
export function describeRules(s: Pick<ScheduleView, 'schedule' | 'idle_pause_minutes'>): string {
  const parts: string[] = []
  if (s.schedule) parts.push(`runs ${s.schedule.days} ${s.schedule.start}–${s.schedule.stop} ${s.schedule.timezone}`)
  if (s.idle_pause_minutes) parts.push(`paused after ${s.idle_pause_minutes} min idle`)
  return parts.join(' · ') || 'always on'
}

/** Every deployment with a schedule or an idle rule, and what its schedule does next. */
export function SchedulesPanel({ live }: { live: boolean }) {
  const { api } = useSession()
  const query = useQuery({ queryKey: keys.schedules, queryFn: api.schedules, refetchInterval: live ? 60_000 : 15_000 })
  return (
    <ListPanel id="schedules" title="When deployments run" what="schedules" icon={<Clock className="h-4 w-4 text-indigo-500" aria-hidden />} query={query}>
      {(schedules) => schedules.map((s) => <ScheduleRow key={s.plan_id} schedule={s} />)}
    </ListPanel>
  )
}

export function ScheduleRow({ schedule: s }: { schedule: ScheduleView }) {
  return (
    <li className="flex flex-wrap items-baseline justify-between gap-2 px-5 py-3 text-sm" data-endpoint={s.endpoint_name ?? s.plan_id}>
      <span className="font-mono">{s.endpoint_name ?? s.plan_id}</span>
      <span data-testid="schedule-rules">{describeRules(s)}</span>
      <span className="text-gray-500" data-testid="schedule-next">
        {s.next ? `next: ${s.next.action} ${when(s.next.at)}` : s.source === 'plan' ? 'the plan’s own idle rule' : ''}
      </span>
    </li>
  )
}

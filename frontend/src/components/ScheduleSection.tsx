import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useEffect, useRef, useState, type FormEvent } from 'react'
import type { ScheduleRequest, ScheduleView } from '../lib/api'
import { can, useSession } from '../lib/context'
import { when } from '../lib/format'
import { keys } from '../lib/keys'
import { describeRules } from './SchedulesPanel'

const INPUT = 'rounded-md border border-gray-300 bg-white px-2 py-1 text-sm dark:border-gray-700 dark:bg-gray-950'

/** The details view's "When it runs": the schedule and idle rule in force, what comes next, and
 * (for deployers) a form that sets or removes them through the same API as the CLI. */
export function ScheduleSection({ planId }: { planId: string }) {
  const { api, me } = useSession()
  const client = useQueryClient()
  const query = useQuery({ queryKey: keys.planSchedule(planId), queryFn: () => api.schedule(planId) })
  const [editing, setEditing] = useState(false)
  // the form goes away on save or cancel: focus returns to its button, so Escape still closes the dialog
  const change = useRef<HTMLButtonElement>(null)
  const wasEditing = useRef(false)
  useEffect(() => {
    if (wasEditing.current && !editing) change.current?.focus()
    wasEditing.current = editing
  }, [editing])
  const [error, setError] = useState<string | null>(null)
  const refresh = () => {
    void client.invalidateQueries({ queryKey: keys.planSchedule(planId) })
    void client.invalidateQueries({ queryKey: keys.schedules })
    void client.invalidateQueries({ queryKey: keys.plan(planId) })
  }
  const save = useMutation({
    mutationFn: (body: ScheduleRequest | null) => (body ? api.setSchedule(planId, body) : api.removeSchedule(planId)),
    onSuccess: (answer) => {
      client.setQueryData(keys.planSchedule(planId), answer.schedule)
      setEditing(false)
      setError(null)
      // the executor records it from the log; read it back a moment later
      window.setTimeout(refresh, 1000)
    },
    onError: (e: Error) => setError(e.message),
  })
  const s = query.data
  if (query.isPending) return <p className="text-sm text-gray-500">Loading…</p>
  if (query.isError || !s) return <p className="text-sm text-gray-500">{(query.error as Error | null)?.message ?? 'No schedule'}</p>
  const deployer = can(me, 'deployer')
  return (
    <div className="space-y-2 text-sm">
      <p data-testid="schedule-summary">
        {describeRules(s)}
        {s.source === 'plan' && <span className="text-gray-500"> (the plan’s own idle rule)</span>}
        {s.set_by && <span className="text-gray-500"> · set by {s.set_by} {when(s.set_at)}</span>}
      </p>
      {s.next && (
        <p data-testid="schedule-next-transition" className="text-gray-600 dark:text-gray-400">
          Next: {s.next.action} at {when(s.next.at)} (wants it {s.wanted_now} now)
        </p>
      )}
      {s.idle_pause_minutes != null && <p className="text-xs text-gray-500">Idleness: {s.idle_check}</p>}
      {error && <p role="alert" data-testid="schedule-error" className="text-red-600">{error}</p>}
      {deployer && !editing && (
        <div className="flex gap-2">
          <button ref={change} type="button" className="rounded-md border border-gray-300 px-3 py-1 dark:border-gray-700" onClick={() => setEditing(true)}>
            Change schedule
          </button>
          {(s.schedule || s.idle_pause_minutes) && (
            <button type="button" className="rounded-md border border-gray-300 px-3 py-1 dark:border-gray-700" onClick={() => save.mutate(null)}>
              Remove schedule
            </button>
          )}
        </div>
      )}
      {deployer && editing && <ScheduleForm current={s} busy={save.isPending} onSave={(body) => save.mutate(body)} onCancel={() => setEditing(false)} />}
    </div>
  )
}

function ScheduleForm({ current, busy, onSave, onCancel }: { current: ScheduleView; busy: boolean; onSave: (b: ScheduleRequest) => void; onCancel: () => void }) {
  const [days, setDays] = useState(current.schedule?.days ?? 'mon-fri')
  const [start, setStart] = useState(current.schedule?.start ?? '')
  const [stop, setStop] = useState(current.schedule?.stop ?? '')
  const [tz, setTz] = useState(current.schedule?.timezone ?? 'UTC')
  const [idle, setIdle] = useState(current.idle_pause_minutes?.toString() ?? '')
  const submit = (e: FormEvent) => {
    e.preventDefault()
    const body: ScheduleRequest = { idle_pause_minutes: idle.trim() ? Number(idle) : null }
    if (start.trim() || stop.trim()) body.schedule = { days, start, stop, timezone: tz }
    onSave(body)
  }
  return (
    <form onSubmit={submit} aria-label="Schedule" className="grid grid-cols-2 gap-2 sm:grid-cols-5">
      <label className="flex flex-col gap-1">Days<input className={INPUT} value={days} onChange={(e) => setDays(e.target.value)} /></label>
      <label className="flex flex-col gap-1">Start<input className={INPUT} placeholder="08:00" value={start} onChange={(e) => setStart(e.target.value)} /></label>
      <label className="flex flex-col gap-1">Stop<input className={INPUT} placeholder="18:00" value={stop} onChange={(e) => setStop(e.target.value)} /></label>
      <label className="flex flex-col gap-1">Time zone<input className={INPUT} value={tz} onChange={(e) => setTz(e.target.value)} /></label>
      <label className="flex flex-col gap-1">Idle minutes<input className={INPUT} inputMode="numeric" value={idle} onChange={(e) => setIdle(e.target.value)} /></label>
      <div className="col-span-2 flex gap-2 sm:col-span-5">
        <button type="submit" disabled={busy} className="rounded-md bg-blue-600 px-3 py-1 text-white disabled:opacity-50">Save schedule</button>
        <button type="button" onClick={onCancel} className="rounded-md border border-gray-300 px-3 py-1 dark:border-gray-700">Cancel</button>
      </div>
    </form>
  )
}

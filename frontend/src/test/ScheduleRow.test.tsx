import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { ScheduleRow, describeRules } from '../components/SchedulesPanel'
import type { ScheduleView } from '../lib/api'

function view(fields: Partial<ScheduleView>): ScheduleView {
  return {
    plan_id: 'p1',
    endpoint_name: 'chatbot-x-staging',
    env: 'staging',
    status: 'deployed',
    schedule: null,
    idle_pause_minutes: null,
    source: 'set',
    set_by: 'alice',
    set_at: '2026-11-23T09:00:00Z',
    wanted_now: null,
    next: null,
    idle_check: 'CloudWatch AWS/SageMaker Invocations, per minute',
    ...fields,
  }
}

describe('when a deployment runs', () => {
  it('says the window and the idle rule in one line', () => {
    const schedule = { days: 'mon-fri', start: '08:00', stop: '18:00', timezone: 'Europe/Berlin' }
    expect(describeRules(view({ schedule, idle_pause_minutes: 120 }))).toBe('runs mon-fri 08:00–18:00 Europe/Berlin · paused after 120 min idle')
    expect(describeRules(view({ idle_pause_minutes: 30 }))).toBe('paused after 30 min idle')
    expect(describeRules(view({}))).toBe('always on')
  })

  it('shows the next transition, or where an idle rule came from', () => {
    const next = { at: '2026-11-23T17:00:00Z', action: 'pause' as const }
    const schedule = { days: '*', start: '08:00', stop: '18:00', timezone: 'UTC' }
    const { unmount } = render(<ul><ScheduleRow schedule={view({ schedule, next, wanted_now: 'running' })} /></ul>)
    expect(screen.getByTestId('schedule-next').textContent).toMatch(/^next: pause /)
    unmount()
    render(<ul><ScheduleRow schedule={view({ idle_pause_minutes: 60, source: 'plan', set_by: null })} /></ul>)
    expect(screen.getByTestId('schedule-next').textContent).toBe('the plan’s own idle rule')
  })
})

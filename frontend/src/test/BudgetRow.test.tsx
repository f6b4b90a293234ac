import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { BudgetRow } from '../components/BudgetsPanel'
import type { BudgetView } from '../lib/api'

function budget(spend: number, crossed: BudgetView['crossed']): BudgetView {
  return {
    scope: 'env:prod',
    monthly_usd: 1000,
    thresholds: [
      { percent: 50, basis: 'actual', action: 'notify' },
      { percent: 100, basis: 'actual', action: 'pause' },
    ],
    spend_usd: spend,
    forecast_usd: spend * 2,
    run_rate_usd_per_hour: 1.5,
    metered_usd: spend,
    billed_usd: null,
    basis: 'the audit-log meter (dry-run: no bill to read)',
    crossed,
    set_by: 'root',
  }
}

describe('a budget row', () => {
  it('shows spend, forecast and no warning while under every threshold', () => {
    render(<ul><BudgetRow budget={budget(120, [])} /></ul>)
    expect(screen.getByTestId('budget-spend').textContent).toBe('$120.00')
    expect(screen.getByTestId('budget-forecast').textContent).toBe('$240.00')
    expect(screen.queryByTestId('budget-crossed')).toBeNull()
  })

  it('names the thresholds it is past and what they did', () => {
    render(<ul><BudgetRow budget={budget(1200, [{ percent: 50, basis: 'actual', action: 'notify' }, { percent: 100, basis: 'actual', action: 'pause' }])} /></ul>)
    const crossed = screen.getByTestId('budget-crossed')
    expect(crossed.textContent).toBe('Past 50% (actual, notify), 100% (actual, pause)')
    expect(crossed.className).toContain('text-red-700')
  })
})

describe('a budget row in aws mode', () => {
  it('shows the meter and the bill beside each other', () => {
    render(<ul><BudgetRow budget={{ ...budget(300, []), metered_usd: 120, billed_usd: 300, basis: 'the larger of the audit-log meter and Cost Explorer' }} /></ul>)
    expect(screen.getByTestId('budget-spend').textContent).toBe('$300.00')
    expect(screen.getByTestId('budget-basis').textContent).toBe('metered $120.00 · billed $300.00 by AWS (Cost Explorer lags up to 24 h)')
  })
})

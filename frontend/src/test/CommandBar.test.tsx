import { render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { describe, expect, it, vi } from 'vitest'
import { CommandBar } from '../components/CommandBar'
import { ToastProvider } from '../components/Toasts'
import { ApiError, type CommandResponse } from '../lib/api'

function success(endpoint: string, requiresApproval = false): CommandResponse {
  return {
    command_id: 'c1',
    status: 'success',
    plan_id: 'p1',
    message: `${endpoint} is deploying`,
    requires_approval: requiresApproval,
    action: null,
    error: null,
    plan: null,
    validation_errors: [],
    result: {
      plan_id: 'p1',
      status: requiresApproval ? 'pending_approval' : 'deploying',
      requires_approval: requiresApproval,
      errors: [],
      artifact: { model_name: 'm', endpoint_name: endpoint, instance_type: 'ml.g6.xlarge', instance_count: 1, budget_usd_per_hour: 15, rollback_alarms: [], idle_pause_minutes: null },
    },
  }
}

function setup(send = vi.fn(async (_c: string, _e: string) => success('chatbot-x-staging'))) {
  render(
    <QueryClientProvider client={new QueryClient()}>
      <ToastProvider>
        <CommandBar send={send} />
      </ToastProvider>
    </QueryClientProvider>,
  )
  return { send, input: screen.getByRole('combobox', { name: 'Command' }), user: userEvent.setup() }
}

describe('CommandBar', () => {
  it('filters suggestions as you type and shows them in a listbox above the input', async () => {
    const { input, user } = setup()
    await user.click(input)
    expect(within(screen.getByRole('listbox')).getAllByRole('option')).toHaveLength(12)
    await user.type(input, 'nemotron')
    const options = within(screen.getByRole('listbox')).getAllByRole('option')
    expect(options.length).toBeGreaterThan(0)
    for (const o of options) expect(o.textContent!.toLowerCase()).toContain('nemotron')
  })

  it('moves with the arrow keys, picks with Enter, closes with Escape', async () => {
    const { input, user, send } = setup()
    await user.click(input)
    await user.type(input, 'budget')
    await user.keyboard('{ArrowDown}{ArrowDown}')
    const options = within(screen.getByRole('listbox')).getAllByRole('option')
    expect(options[1]).toHaveAttribute('aria-selected', 'true')
    expect(input).toHaveAttribute('aria-activedescendant', options[1].id)
    const chosen = options[1].textContent
    await user.keyboard('{Enter}')
    expect(input).toHaveValue(chosen)
    expect(screen.queryByRole('listbox')).toBeNull()
    expect(send).not.toHaveBeenCalled() // Enter on a highlighted suggestion picks it; it does not send
    await user.keyboard('{ArrowDown}')
    expect(screen.getByRole('listbox')).toBeInTheDocument()
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('listbox')).toBeNull()
  })

  it('sends with the chosen environment, shows the endpoint, and remembers the command', async () => {
    const send = vi.fn(async () => success('chatbot-x-prod', true))
    const { input, user } = setup(send)
    await user.selectOptions(screen.getByLabelText('Env'), 'prod')
    await user.type(input, 'deploy llama-3.1 8B for chatbot-x{Escape}')
    await user.click(screen.getByRole('button', { name: 'Send' }))
    expect(send).toHaveBeenCalledWith('deploy llama-3.1 8B for chatbot-x', 'prod')
    const box = await screen.findByTestId('command-success')
    expect(box).toHaveTextContent('chatbot-x-prod')
    expect(box).toHaveTextContent('Requires approval')
    expect(input).toHaveValue('')
    expect(JSON.parse(localStorage.getItem('recentCommands')!)).toEqual(['deploy llama-3.1 8B for chatbot-x'])
    await user.click(input)
    const first = within(screen.getByRole('listbox')).getAllByRole('option')[0]
    expect(first).toHaveTextContent('deploy llama-3.1 8B for chatbot-x')
    expect(first).toHaveTextContent('Recent')
  })

  it('shows a processing state while the command is in flight', async () => {
    let finish: (r: CommandResponse) => void = () => undefined
    const send = vi.fn(() => new Promise<CommandResponse>((resolve) => (finish = resolve)))
    const { input, user } = setup(send)
    await user.type(input, 'deploy mistral 7B for summarizer{Escape}')
    await user.click(screen.getByRole('button', { name: 'Send' }))
    expect(screen.getByRole('button', { name: 'Processing…' })).toBeDisabled()
    expect(input).toBeDisabled()
    finish(success('summarizer-staging'))
    await waitFor(() => expect(screen.getByRole('button', { name: 'Send' })).toBeInTheDocument())
  })

  it('lists validation errors in a yellow box and keeps nothing as sent', async () => {
    const send = vi.fn(async () => ({
      ...success('x'),
      status: 'validation_failed' as const,
      message: 'the plan failed its guardrails',
      validation_errors: ['estimated $13.12/h is over the budget of $1.00/h', 'instance_count 9 is over the limit of 4'],
    }))
    const { input, user } = setup(send)
    await user.type(input, 'deploy llama-3.1 70B for big with budget $1/hour{Escape}{Enter}')
    const box = await screen.findByTestId('command-validation')
    expect(box.querySelectorAll('li')).toHaveLength(2)
    expect(box).toHaveTextContent('over the budget')
  })

  it('explains a network failure and a refused request', async () => {
    const send = vi
      .fn()
      .mockRejectedValueOnce(new ApiError('cannot reach the AgentOps gateway', 0))
      .mockRejectedValueOnce(new ApiError('too many commands from this key: retry in 3 s', 429))
    const { input, user } = setup(send)
    await user.type(input, 'deploy llama-3.1 8B for a{Escape}{Enter}')
    expect(await screen.findByTestId('command-error')).toHaveTextContent('Network error')
    expect(input).toHaveValue('deploy llama-3.1 8B for a') // nothing lost: try again
    await user.click(screen.getByRole('button', { name: 'Send' }))
    await waitFor(() => expect(screen.getByTestId('command-error')).toHaveTextContent('retry in 3 s'))
  })

  it('clears the input with the clear button', async () => {
    const { input, user } = setup()
    await user.type(input, 'deploy')
    await user.click(screen.getByRole('button', { name: 'Clear command' }))
    expect(input).toHaveValue('')
    expect(input).toHaveFocus()
  })
})

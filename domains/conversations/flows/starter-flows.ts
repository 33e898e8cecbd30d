import type { FlowDocumentInput } from './schema.js'

/**
 * Starter flows a business picks during onboarding, filled in with its name and what it offers. `qualification`:
 * greet → what do you need (the services as a list, plus "Talk to a person") → email → the lead is qualified and
 * tagged with the service → thanks. The WhatsApp list holds up to 10 rows, so up to 9 services and the human option.
 */
export function qualificationStarterFlow(input: { businessName: string; services: string[] }): FlowDocumentInput {
  const options = input.services.map((title, i) => ({ id: `service_${i + 1}`, title: title.slice(0, 24) }))
  return {
    name: `${input.businessName}: lead qualification`,
    description: 'Created during onboarding: greets new contacts, asks what they need, collects an email and qualifies the lead.',
    trigger: { type: 'first_message' },
    startNodeId: 'greet',
    nodes: [
      { type: 'send_message', id: 'greet', text: `Hi {{lead.name|there}}! 👋 Welcome to ${input.businessName}. I'm the assistant and I'll help you in under a minute.`, next: 'ask_service' },
      {
        type: 'ask', id: 'ask_service', text: 'What can we help you with?', answerKey: 'service',
        input: { kind: 'list', buttonText: 'Choose', options: [...options, { id: 'human', title: 'Talk to a person' }] },
        invalidText: 'Sorry, I did not get that. Please pick one of the options 👇', maxAttempts: 3, onMaxAttempts: 'talk_to_person',
        next: 'route_service',
      },
      { type: 'branch', id: 'route_service', rules: [{ when: { answer: 'service', equals: 'human' }, next: 'talk_to_person' }], otherwise: 'ask_email' },
      {
        type: 'ask', id: 'ask_email', text: "What's your email? We'll follow up there too.", answerKey: 'email',
        input: { kind: 'text', validate: 'email' }, invalidText: "That doesn't look like an email address. Could you check it?", maxAttempts: 3, onMaxAttempts: 'qualify',
        next: 'save_email',
      },
      { type: 'set_field', id: 'save_email', field: 'email', value: '{{answers.email}}', next: 'qualify' },
      { type: 'qualify', id: 'qualify', status: 'qualified', next: 'thanks' },
      { type: 'end', id: 'thanks', text: `Thank you! Someone from ${input.businessName} will get back to you here on WhatsApp shortly.` },
      { type: 'handover', id: 'talk_to_person', text: "Sure! I'm passing you to our team. Someone will reply right here shortly.", note: 'Lead asked for a person' },
    ],
  } as FlowDocumentInput
}

import type { FlowDocumentInput } from './schema.js'

/**
 * The demo tenant's lead-qualification flow for a dental clinic, as a tenant would write it (parse it with
 * `FlowDocument` before running it). Used by the demo seed and the flow tests.
 *
 * greeting_test (the demo experiment greeting-tone: a longer or a shorter welcome, seeded running by
 * db/seeds/0004_demo_experiment.sql) -> greet | greet_short -> ask_service (buttons; "Talk to a person" hands over) -> ask_time (list) -> ask_email (validated)
 *   -> implants qualify the lead, everything else is tagged -> thanks.
 */
export const demoQualificationFlow = {
  name: 'Dental clinic: new patient qualification',
  description: 'Greets new WhatsApp contacts, asks what they need and when, collects an email and routes implant leads to sales.',
  trigger: { type: 'first_message' },
  startNodeId: 'greeting_test',
  nodes: [
    {
      type: 'experiment',
      id: 'greeting_test',
      experimentKey: 'greeting-tone',
      variations: [{ variationKey: 'full', next: 'greet' }, { variationKey: 'short', next: 'greet_short' }],
      otherwise: 'greet',
    },
    {
      type: 'send_message',
      id: 'greet_short',
      text: 'Hi {{lead.name|there}}! 👋 Welcome to Bright Smile Dental.',
      next: 'ask_service',
    },
    {
      type: 'send_message',
      id: 'greet',
      text: "Hi {{lead.name|there}}! 👋 Welcome to Bright Smile Dental. I'm the clinic's assistant and I'll get you booked in under a minute.",
      next: 'ask_service',
    },
    {
      type: 'ask',
      id: 'ask_service',
      text: 'What can we help you with?',
      answerKey: 'service',
      input: {
        kind: 'buttons',
        options: [
          { id: 'cleaning', title: 'Cleaning & check-up' },
          { id: 'implants', title: 'Implants & braces' },
          { id: 'human', title: 'Talk to a person' },
        ],
      },
      invalidText: 'Sorry, I did not get that. Please tap one of the buttons below 👇',
      maxAttempts: 3,
      onMaxAttempts: 'talk_to_person',
      timeout: {
        afterSeconds: 3600,
        reminderText: 'Still there? Just tap one of the options above and we will find you a slot 🙂',
        thenNodeId: 'no_reply',
      },
      next: 'route_service',
    },
    {
      type: 'branch',
      id: 'route_service',
      rules: [{ when: { answer: 'service', equals: 'human' }, next: 'talk_to_person' }],
      otherwise: 'ask_time',
    },
    {
      type: 'ask',
      id: 'ask_time',
      text: 'Great choice: {{answers.service}}. When would you prefer to come in?',
      answerKey: 'preferred_time',
      input: {
        kind: 'list',
        buttonText: 'See times',
        options: [
          { id: 'weekday_morning', title: 'Weekday morning', description: 'Mon-Fri, 8:00-12:00' },
          { id: 'weekday_afternoon', title: 'Weekday afternoon', description: 'Mon-Fri, 12:00-18:00' },
          { id: 'weekday_evening', title: 'Weekday evening', description: 'Mon-Fri, 18:00-20:00' },
          { id: 'saturday', title: 'Saturday', description: 'Sat, 8:00-13:00' },
        ],
      },
      invalidText: 'Please pick a time from the list 👇',
      onMaxAttempts: 'talk_to_person',
      next: 'save_time',
    },
    {
      type: 'set_field',
      id: 'save_time',
      field: 'preferred_time',
      value: '{{answers.preferred_time}}',
      next: 'ask_email',
    },
    {
      type: 'ask',
      id: 'ask_email',
      text: "What's your email? We'll send your appointment confirmation there.",
      answerKey: 'email',
      input: { kind: 'text', validate: 'email' },
      invalidText: "Hmm, that doesn't look like an email address. Could you check it? (e.g. maria@example.com)",
      maxAttempts: 3,
      onMaxAttempts: 'tag_no_email',
      next: 'save_email',
    },
    {
      type: 'set_field',
      id: 'save_email',
      field: 'email',
      value: '{{answers.email}}',
      next: 'route_value',
    },
    {
      type: 'tag',
      id: 'tag_no_email',
      add: ['no_email'],
      next: 'route_value',
    },
    {
      type: 'branch',
      id: 'route_value',
      rules: [{ when: { answer: 'service', equals: 'implants' }, next: 'qualify_implants' }],
      otherwise: 'tag_cleaning',
    },
    {
      type: 'qualify',
      id: 'qualify_implants',
      status: 'qualified',
      next: 'tag_implants',
    },
    {
      type: 'tag',
      id: 'tag_implants',
      add: ['service:implants', 'high_value'],
      next: 'thanks',
    },
    {
      type: 'tag',
      id: 'tag_cleaning',
      add: ['service:cleaning'],
      next: 'thanks',
    },
    {
      type: 'end',
      id: 'thanks',
      text: 'Thank you, {{lead.name|and see you soon}}! 🦷 Our team will confirm your {{answers.service}} appointment ({{answers.preferred_time}}) here on WhatsApp shortly.',
    },
    {
      type: 'handover',
      id: 'talk_to_person',
      text: "Sure! I'm passing you to our front desk. Someone will reply right here shortly (Mon-Sat, 8:00-20:00).",
      note: 'Lead asked for a person (service: {{answers.service|not chosen}})',
    },
    {
      type: 'end',
      id: 'no_reply',
      text: "No worries, {{lead.name|there}}. Whenever you're ready, just send us a message here. 😊",
    },
  ],
} satisfies FlowDocumentInput

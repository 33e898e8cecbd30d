import type { DefinitionInput } from './schemas.js'

/**
 * Two realistic assessments, used by the demo seed, the tests and the bench: a health check (sleep, activity,
 * nutrition, habits, mind; BMI from weight and height) and a financial health check (saving, debt, planning,
 * investing, protection; an expense ratio guarded against a zero income).
 */

const pts = (...pairs: [string, number][]) => Object.fromEntries(pairs)

export const HEALTH_DEFINITION: DefinitionInput = {
  questions: [
    { id: 'sleep_hours', type: 'single_choice', category: 'sleep', text: 'On a typical night, how many hours do you sleep?',
      options: [{ id: 'lt5', label: 'Less than 5' }, { id: 'h5_6', label: '5 to 6' }, { id: 'h7_8', label: '7 to 8' }, { id: 'gt9', label: '9 or more' }] },
    { id: 'sleep_quality', type: 'scale', category: 'sleep', text: 'How rested do you feel when you wake up? (1 = exhausted, 5 = fully rested)', min: 1, max: 5 },
    { id: 'exercise_days', type: 'single_choice', category: 'activity', text: 'On how many days a week are you active for 30 minutes or more?',
      options: [{ id: 'd0', label: 'None' }, { id: 'd1_2', label: '1 to 2 days' }, { id: 'd3_4', label: '3 to 4 days' }, { id: 'd5', label: '5 or more days' }] },
    { id: 'activities', type: 'multiple_choice', category: 'activity', required: false, text: 'Which of these do you do regularly?', maxSelections: 6,
      options: [{ id: 'walking', label: 'Walking' }, { id: 'running', label: 'Running' }, { id: 'cycling', label: 'Cycling' }, { id: 'swimming', label: 'Swimming' },
        { id: 'strength', label: 'Strength training' }, { id: 'yoga', label: 'Yoga or pilates' }, { id: 'team', label: 'Team sports' }, { id: 'dance', label: 'Dancing' },
        { id: 'martial', label: 'Martial arts' }, { id: 'hiking', label: 'Hiking' }, { id: 'climbing', label: 'Climbing' }, { id: 'other', label: 'Something else' }] },
    { id: 'smoker', type: 'yes_no', category: 'habits', text: 'Do you smoke?' },
    { id: 'cigarettes', type: 'number', integer: true, min: 1, max: 80, unit: 'per day', text: 'About how many cigarettes a day?', showIf: { question: 'smoker', equals: true } },
    { id: 'alcohol', type: 'single_choice', category: 'habits', text: 'How often do you drink alcohol?',
      options: [{ id: 'never', label: 'Never' }, { id: 'monthly', label: 'A few times a month' }, { id: 'weekly', label: 'Every week' }, { id: 'daily', label: 'Almost every day' }] },
    { id: 'fruit_veg', type: 'single_choice', category: 'nutrition', text: 'How many portions of fruit and vegetables do you eat a day?',
      options: [{ id: 'p0_1', label: '0 to 1' }, { id: 'p2_3', label: '2 to 3' }, { id: 'p4_5', label: '4 to 5' }, { id: 'p6', label: '6 or more' }] },
    { id: 'water', type: 'single_choice', category: 'nutrition', text: 'How many glasses of water do you drink a day?',
      options: [{ id: 'w1_3', label: '1 to 3' }, { id: 'w4_6', label: '4 to 6' }, { id: 'w7', label: '7 or more' }] },
    { id: 'stress', type: 'scale', category: 'mind', text: 'How stressed have you felt over the last two weeks? (1 = not at all, 10 = extremely)', min: 1, max: 10 },
    { id: 'mood', type: 'single_choice', category: 'mind', text: 'How would you describe your mood lately?',
      options: [{ id: 'great', label: 'Great' }, { id: 'good', label: 'Good' }, { id: 'ok', label: 'So-so' }, { id: 'low', label: 'Low' }] },
    { id: 'weight_kg', type: 'number', min: 30, max: 250, unit: 'kg', text: 'What is your weight in kg?' },
    { id: 'height_cm', type: 'number', min: 120, max: 220, unit: 'cm', text: 'And your height in cm?' },
    { id: 'goals', type: 'text', required: false, maxLength: 500, text: 'Is there anything about your health you would like to improve?' },
  ],
  categories: [
    { key: 'sleep', name: 'Sleep', weight: 1, recommendations: [{ below: 50, text: 'Keep a regular bedtime and aim for 7 to 8 hours: sleep is the base of everything else.' }] },
    { key: 'activity', name: 'Activity', weight: 1.25, recommendations: [{ below: 40, text: 'Start with a brisk 20-minute walk three times a week.' }] },
    { key: 'nutrition', name: 'Nutrition', weight: 1, recommendations: [{ below: 50, text: 'Add one portion of vegetables to lunch and dinner, and keep a bottle of water in sight.' }] },
    { key: 'habits', name: 'Habits', weight: 0.75 },
    { key: 'mind', name: 'Mind', weight: 1, recommendations: [{ below: 45, text: 'Stress is high: short daily breathing exercises help, and talking to someone helps more.' }] },
  ],
  rubric: {
    categoryScoring: 'percent',
    points: {
      sleep_hours: pts(['lt5', 0], ['h5_6', 5], ['h7_8', 10], ['gt9', 6]),
      sleep_quality: pts(['1', 0], ['2', 3], ['3', 5], ['4', 8], ['5', 10]),
      exercise_days: pts(['d0', 0], ['d1_2', 4], ['d3_4', 8], ['d5', 10]),
      activities: pts(['walking', 1], ['running', 2], ['cycling', 2], ['swimming', 2], ['strength', 2], ['yoga', 1], ['team', 2], ['dance', 1], ['martial', 2], ['hiking', 1], ['climbing', 2], ['other', 1]),
      smoker: pts(['yes', 0], ['no', 10]),
      alcohol: pts(['never', 10], ['monthly', 8], ['weekly', 5], ['daily', 0]),
      fruit_veg: pts(['p0_1', 0], ['p2_3', 4], ['p4_5', 8], ['p6', 10]),
      water: pts(['w1_3', 2], ['w4_6', 6], ['w7', 10]),
      stress: pts(['1', 10], ['2', 9], ['3', 8], ['4', 7], ['5', 5], ['6', 4], ['7', 3], ['8', 2], ['9', 1], ['10', 0]),
      mood: pts(['great', 10], ['good', 7], ['ok', 4], ['low', 0]),
    },
    formulas: [
      { key: 'bmi', label: 'Body mass index', expr: 'round(q.weight_kg / ((q.height_cm / 100) * (q.height_cm / 100)), 1)' },
      { key: 'bmi_adjustment', label: 'BMI adjustment', expr: 'if f.bmi < 18.5 then -5 else if f.bmi < 25 then 0 else if f.bmi < 30 then -4 else -8' },
      { key: 'smoking_penalty', label: 'Smoking', expr: 'if q.smoker == 0 then 5 + min(q.cigarettes, 20) / 2 else 0' },
    ],
    total: 'clamp(round(c.sleep * 0.2 + c.activity * 0.25 + c.nutrition * 0.2 + c.habits * 0.15 + c.mind * 0.2 + f.bmi_adjustment - f.smoking_penalty, 1), 0, 100)',
    bands: [
      { key: 'at_risk', label: 'At risk', min: 0, recommendations: ['Book a check-up with your doctor and pick one habit to change this month.'] },
      { key: 'fair', label: 'Fair', min: 40, recommendations: ['You have a base to build on: focus on your lowest category first.'] },
      { key: 'good', label: 'Good', min: 60, recommendations: ['Good habits: keep them steady and refine sleep and stress.'] },
      { key: 'excellent', label: 'Excellent', min: 80, recommendations: ['Excellent: keep it up and check in again in three months.'] },
    ],
  },
  profileFields: [
    { key: 'age', label: 'Age', type: 'number', required: true, min: 16, max: 110 },
    { key: 'gender', label: 'Gender', type: 'choice', required: false,
      options: [{ id: 'female', label: 'Female' }, { id: 'male', label: 'Male' }, { id: 'other', label: 'Other' }, { id: 'na', label: 'Prefer not to say' }] },
    { key: 'country', label: 'Country', type: 'text', required: false },
  ],
}

export const WEALTH_DEFINITION: DefinitionInput = {
  questions: [
    { id: 'monthly_income', type: 'number', min: 0, max: 1_000_000, unit: 'per month', text: 'What is your household income per month, after tax?' },
    { id: 'monthly_expenses', type: 'number', min: 0, max: 1_000_000, unit: 'per month', text: 'And your usual spending per month?' },
    { id: 'savings_rate', type: 'single_choice', category: 'saving', text: 'How much of your income do you save each month?',
      options: [{ id: 's0', label: 'Nothing' }, { id: 's1_10', label: 'Up to 10%' }, { id: 's10_20', label: '10% to 20%' }, { id: 's20', label: 'More than 20%' }] },
    { id: 'emergency_months', type: 'number', integer: true, min: 0, max: 60, unit: 'months', text: 'For how many months could your savings cover your expenses?' },
    { id: 'high_interest_debt', type: 'yes_no', category: 'debt', text: 'Do you have credit card or other high-interest debt?' },
    { id: 'debt_share', type: 'single_choice', category: 'debt', text: 'What share of your income goes to debt repayments?', showIf: { question: 'high_interest_debt', equals: true },
      options: [{ id: 'lt10', label: 'Under 10%' }, { id: 'd10_30', label: '10% to 30%' }, { id: 'd30_50', label: '30% to 50%' }, { id: 'gt50', label: 'Over 50%' }] },
    { id: 'budget', type: 'single_choice', category: 'planning', text: 'Do you keep a monthly budget?',
      options: [{ id: 'always', label: 'Yes, always' }, { id: 'sometimes', label: 'Sometimes' }, { id: 'never', label: 'No' }] },
    { id: 'retirement', type: 'yes_no', category: 'planning', text: 'Are you contributing to a retirement plan?' },
    { id: 'investments', type: 'multiple_choice', category: 'investing', required: false, text: 'Where do you invest today?',
      options: [{ id: 'stocks', label: 'Shares' }, { id: 'funds', label: 'Funds or ETFs' }, { id: 'bonds', label: 'Bonds' }, { id: 'property', label: 'Property' }, { id: 'crypto', label: 'Crypto' }, { id: 'deposits', label: 'Term deposits' }] },
    { id: 'risk', type: 'scale', category: 'investing', min: 1, max: 5, text: 'How comfortable are you with investment risk? (1 = not at all, 5 = very)' },
    { id: 'insurance', type: 'multiple_choice', category: 'protection', required: false, text: 'Which insurance do you have?',
      options: [{ id: 'health', label: 'Health' }, { id: 'life', label: 'Life' }, { id: 'home', label: 'Home' }, { id: 'disability', label: 'Disability / income' }] },
    { id: 'goal', type: 'text', required: false, maxLength: 500, text: 'What is your most important financial goal?' },
  ],
  categories: [
    { key: 'saving', name: 'Saving', weight: 1.5, recommendations: [{ below: 40, text: 'Set up an automatic transfer to savings on payday, even a small one.' }] },
    { key: 'debt', name: 'Debt', weight: 1.25, recommendations: [{ below: 50, text: 'Pay down the highest-interest debt first while paying the minimum on the rest.' }] },
    { key: 'planning', name: 'Planning', weight: 1 },
    { key: 'investing', name: 'Investing', weight: 1 },
    { key: 'protection', name: 'Protection', weight: 0.75, recommendations: [{ below: 30, text: 'Check that you are covered if you could not work for a few months.' }] },
  ],
  rubric: {
    categoryScoring: 'percent',
    points: {
      savings_rate: pts(['s0', 0], ['s1_10', 4], ['s10_20', 8], ['s20', 10]),
      high_interest_debt: pts(['yes', 0], ['no', 10]),
      debt_share: pts(['lt10', 8], ['d10_30', 5], ['d30_50', 2], ['gt50', 0]),
      budget: pts(['always', 10], ['sometimes', 5], ['never', 0]),
      retirement: pts(['yes', 10], ['no', 0]),
      investments: pts(['stocks', 3], ['funds', 4], ['bonds', 2], ['property', 3], ['crypto', 1], ['deposits', 2]),
      risk: pts(['1', 2], ['2', 4], ['3', 5], ['4', 5], ['5', 4]),
      insurance: pts(['health', 3], ['life', 3], ['home', 2], ['disability', 2]),
    },
    formulas: [
      // Guarded: an income of 0 is a valid answer.
      { key: 'expense_ratio', label: 'Spending as a share of income', expr: 'round(q.monthly_expenses / max(q.monthly_income, 1), 2)' },
      { key: 'cushion', label: 'Emergency cushion (0-10)', expr: 'min(q.emergency_months, 6) / 6 * 10' },
    ],
    total: 'clamp(round(c.saving * 0.2 + f.cushion * 2 + c.debt * 0.2 + c.planning * 0.2 + c.investing * 0.1 + c.protection * 0.1 + (if f.expense_ratio > 1 then -10 else if f.expense_ratio < 0.7 then 5 else 0), 1), 0, 100)',
    bands: [
      { key: 'fragile', label: 'Fragile', min: 0, recommendations: ['Start with a budget and a small emergency fund before anything else.'] },
      { key: 'building', label: 'Building', min: 40, recommendations: ['You are on your way: grow the emergency fund to three months of expenses.'] },
      { key: 'stable', label: 'Stable', min: 60, recommendations: ['Solid footing: review your investments and insurance once a year.'] },
      { key: 'thriving', label: 'Thriving', min: 80, recommendations: ['Thriving: think about long-term goals and tax-efficient investing.'] },
    ],
  },
  profileFields: [
    { key: 'age', label: 'Age', type: 'number', required: true, min: 16, max: 110 },
    { key: 'household', label: 'People in your household', type: 'number', required: false, min: 1, max: 20 },
    { key: 'employment', label: 'Employment', type: 'choice', required: false,
      options: [{ id: 'employed', label: 'Employed' }, { id: 'self_employed', label: 'Self-employed' }, { id: 'student', label: 'Student' }, { id: 'retired', label: 'Retired' }, { id: 'other', label: 'Other' }] },
  ],
}

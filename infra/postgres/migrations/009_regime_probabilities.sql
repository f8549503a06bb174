-- Class probabilities of a model's regime classification (issue 17): regime name → p, as
-- RegimeClassified.probabilities. NULL for the rules, which have none.
ALTER TABLE regimes ADD COLUMN IF NOT EXISTS probabilities jsonb;

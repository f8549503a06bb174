"""Regime classification (rules and scikit-learn) and adaptive sizing."""

"""One construct per capability of the payment system, plus the shared tables and function shape."""

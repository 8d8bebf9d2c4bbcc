"""Documents: the company's templates (Typst markup with Jinja2 placeholders, every value
escaped) rendered to PDF and stored as a file of the deal; invoices render the same way."""

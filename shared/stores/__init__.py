"""One store per backend: the SQL of each project lives in its module, parameterised."""

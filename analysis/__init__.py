"""Loading result CSVs and drawing the plots HPO researchers use."""

"""The Covertype data: column tables, the 55 <-> 13 column conversion and the data source."""

module example.com/skybridge/functions

go 1.21

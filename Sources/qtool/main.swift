import QtoolCLI

QtoolCLI.main()
